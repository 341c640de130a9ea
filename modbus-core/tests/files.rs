//! Read File Record (14): each length rule of the request and of the
//! answer, at its boundary.

use outpost_modbus_core::{DecodeError, FileReadResponse, FileReads, FileRecordRef, Request, Response, Words};

/// A request whose byte count is `n`, followed by `n` bytes of whole,
/// valid sub-requests (and a partial one when `n` is not a multiple of 7).
fn read_request(n: usize) -> Vec<u8> {
    let mut pdu = vec![0x14, n as u8];
    let sub = [0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x01];
    pdu.extend(sub.iter().cycle().take(n));
    pdu
}

#[test]
fn a_read_requests_byte_count_is_7_to_245_in_sevens() {
    for n in [7, 14, 245] {
        let pdu = read_request(n);
        let Ok(Request::ReadFileRecord(reads)) = Request::decode(&pdu) else {
            panic!("{n} bytes refused");
        };
        assert_eq!(reads.len(), n / 7);
    }
    let expected = |n: usize| (7 * (n / 7)).max(7);
    for n in [0, 3, 6, 8, 13, 15, 246, 251] {
        assert_eq!(
            Request::decode(&read_request(n)),
            Err(DecodeError::ByteCount {
                function: 0x14,
                byte_count: n,
                expected: expected(n)
            }),
            "{n} bytes"
        );
    }
}

#[test]
fn read_requests_compare_by_their_sub_requests() {
    let a = [FileRecordRef {
        file: 4,
        record: 1,
        length: 2,
    }];
    let b = [FileRecordRef {
        file: 4,
        record: 1,
        length: 3,
    }];
    assert_eq!(FileReads::new(&a).unwrap(), FileReads::new(&a).unwrap());
    assert_ne!(FileReads::new(&a).unwrap(), FileReads::new(&b).unwrap());
    let pdu = read_request(7);
    let Ok(Request::ReadFileRecord(decoded)) = Request::decode(&pdu) else {
        panic!()
    };
    let same = [FileRecordRef {
        file: 1,
        record: 2,
        length: 1,
    }];
    assert_eq!(decoded, FileReads::new(&same).unwrap());
}

/// An answer from its groups: each group's length byte, reference type 6
/// and values.
fn answer(groups: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = groups.iter().flat_map(|g| g.iter().copied()).collect();
    let mut pdu = vec![0x14, body.len() as u8];
    pdu.extend(body);
    pdu
}

#[test]
fn an_answers_groups_hold_a_type_and_whole_records() {
    // Two groups: one record, then two.
    let ok = answer(&[&[3, 6, 0x0D, 0xFE], &[5, 6, 0x00, 0x20, 0x00, 0x21]]);
    let Ok(Response::ReadFileRecord(groups)) = Response::decode(&ok) else {
        panic!("refused")
    };
    assert_eq!((groups.len(), groups.is_empty()), (2, false));
    let values: Vec<Vec<u16>> = groups.iter().map(|g| g.iter().collect()).collect();
    assert_eq!(values, [vec![0x0DFE], vec![0x0020, 0x0021]]);
    let one = [0x0DFEu16];
    let two = [0x0020u16, 0x0021];
    let native = [Words::from_slice(&one), Words::from_slice(&two)];
    assert_eq!(groups, FileReadResponse::new(&native).unwrap());

    // Each length rule alone: too short for a record, an even length (half
    // a record), a length past the end.
    for (name, bad) in [
        ("no record", answer(&[&[1, 6]])),
        ("half a record", answer(&[&[4, 6, 0x00, 0x01, 0x02]])),
        ("past the end", answer(&[&[5, 6, 0x00, 0x01]])),
        (
            "a good group, then past the end",
            answer(&[&[3, 6, 0x00, 0x01], &[7, 6, 0x00]]),
        ),
    ] {
        assert!(
            matches!(
                Response::decode(&bad),
                Err(DecodeError::ByteCount { function: 0x14, .. })
            ),
            "{name}: {:?}",
            Response::decode(&bad)
        );
    }
    // No group at all: a group takes at least 4 bytes.
    assert_eq!(
        Response::decode(&[0x14, 0x00]),
        Err(DecodeError::ByteCount {
            function: 0x14,
            byte_count: 0,
            expected: 4
        })
    );
}

/// A Write File Record request from its groups: type 6, file, record,
/// length and values each.
fn write_request(groups: &[(u16, u16, &[u16])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (file, record, values) in groups {
        body.push(6);
        body.extend(file.to_be_bytes());
        body.extend(record.to_be_bytes());
        body.extend((values.len() as u16).to_be_bytes());
        body.extend(values.iter().flat_map(|v| v.to_be_bytes()));
    }
    let mut pdu = vec![0x15, body.len() as u8];
    pdu.extend(body);
    pdu
}

#[test]
fn a_write_requests_groups_are_whole_and_counted() {
    let pdu = write_request(&[(4, 7, &[0x06AF, 0x04BE]), (5, 9, &[0x0100])]);
    let Ok(Request::WriteFileRecord(writes)) = Request::decode(&pdu) else {
        panic!("refused")
    };
    assert_eq!((writes.len(), writes.is_empty()), (2, false));
    let values: Vec<(u16, u16, Vec<u16>)> = writes
        .iter()
        .map(|g| (g.file, g.record, g.values.iter().collect()))
        .collect();
    assert_eq!(values, [(4, 7, vec![0x06AF, 0x04BE]), (5, 9, vec![0x0100])]);
    let other = write_request(&[(4, 7, &[0x06AF, 0x04BE]), (5, 9, &[0x0101])]);
    let Ok(Request::WriteFileRecord(different)) = Request::decode(&other) else {
        panic!("refused")
    };
    assert_ne!(writes, different);

    // The first group is 11 bytes: a second header cut after 3 bytes needs
    // 11 + 7; a second group cut in its values needs 11 + 9.
    let mut cut_header = write_request(&[(4, 7, &[0x06AF, 0x04BE])]);
    cut_header.extend([6, 0, 5]);
    cut_header[1] = 14;
    assert_eq!(
        Request::decode(&cut_header),
        Err(DecodeError::ByteCount {
            function: 0x15,
            byte_count: 14,
            expected: 18
        })
    );
    let mut cut_values = write_request(&[(4, 7, &[0x06AF, 0x04BE])]);
    cut_values.extend([6, 0, 5, 0, 9, 0, 1, 0x01]);
    cut_values[1] = 19;
    assert_eq!(
        Request::decode(&cut_values),
        Err(DecodeError::ByteCount {
            function: 0x15,
            byte_count: 19,
            expected: 20
        })
    );
    // No group at all: a group takes at least 9 bytes.
    assert_eq!(
        Request::decode(&[0x15, 0x00]),
        Err(DecodeError::ByteCount {
            function: 0x15,
            byte_count: 0,
            expected: 9
        })
    );
}

/// A write's answer echoes it: an echo differing in any value, record or
/// file is not the answer.
#[test]
fn a_write_answer_must_echo_every_group() {
    use outpost_modbus_core::{Expectation, ResponseError};
    let groups: &[(u16, u16, &[u16])] = &[(4, 7, &[0x06AF, 0x04BE]), (5, 9, &[0x0100])];
    let pdu = write_request(groups);
    let request = Request::decode(&pdu).unwrap();
    let e = Expectation::new(&request);
    assert!(e.check(&pdu).is_ok());
    for changed in [
        write_request(&[(4, 7, &[0x06AF, 0x04BF]), (5, 9, &[0x0100])]),
        write_request(&[(4, 8, &[0x06AF, 0x04BE]), (5, 9, &[0x0100])]),
        write_request(&[(4, 7, &[0x06AF, 0x04BE]), (6, 9, &[0x0100])]),
        write_request(&[(4, 7, &[0x06AF, 0x04BE])]),
    ] {
        assert_eq!(
            e.check(&changed),
            Err(ResponseError::Echo { function: 0x15 }),
            "{changed:02x?}"
        );
    }
}

#[test]
fn file_read_answers_differ_by_their_values() {
    let a = [1u16, 2];
    let b = [1u16, 3];
    let one = [Words::from_slice(&a)];
    let two = [Words::from_slice(&b)];
    assert_ne!(
        FileReadResponse::new(&one).unwrap(),
        FileReadResponse::new(&two).unwrap()
    );
}

#[test]
fn identification_answers_name_how_many_bytes_trail() {
    for extra in [1usize, 2, 5] {
        let mut pdu = vec![0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, b'V'];
        pdu.extend(std::iter::repeat_n(0xEE, extra));
        assert_eq!(
            Response::decode(&pdu),
            Err(DecodeError::TrailingBytes { function: 0x2B, extra })
        );
    }
}

/// The answer a read asks for must fit one PDU: 251 bytes of groups.
#[test]
fn a_read_whose_answer_cannot_fit_is_refused() {
    // One group of n records answers 2 + 2n bytes: 124 records fit, 125 not.
    let fits = [FileRecordRef {
        file: 1,
        record: 0,
        length: 124,
    }];
    assert!(FileReads::new(&fits).is_ok());
    let over = [FileRecordRef {
        file: 1,
        record: 0,
        length: 125,
    }];
    assert_eq!(
        FileReads::new(&over).err(),
        Some(outpost_modbus_core::RangeError::Length {
            len: 252,
            min: 4,
            max: 251
        })
    );
    // Several groups add up: 2 * (2 + 2 * 61) = 248 fits, 2 * (2 + 2 * 62) not.
    let two = |length| {
        [
            FileRecordRef {
                file: 1,
                record: 0,
                length,
            },
            FileRecordRef {
                file: 2,
                record: 0,
                length,
            },
        ]
    };
    assert!(FileReads::new(&two(61)).is_ok());
    assert!(FileReads::new(&two(62)).is_err());
}
