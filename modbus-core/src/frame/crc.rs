//! CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF), slice-by-16: sixteen
//! 256-entry tables (8 KiB) let one step consume 16 bytes.

const fn make_tables() -> [[u16; 256]; 16] {
    let mut t = [[0u16; 256]; 16];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 16 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

static TABLES: [[u16; 256]; 16] = make_tables();

/// CRC-16/MODBUS of `data`. On the wire the low byte is sent first.
///
/// ```
/// // The check value of the CRC-16/MODBUS catalogue entry.
/// assert_eq!(outpost_modbus_core::crc16(b"123456789"), 0x4B37);
/// ```
pub fn crc16(data: &[u8]) -> u16 {
    let t = &TABLES;
    let mut crc: u16 = 0xFFFF;
    let (blocks, rest) = data.as_chunks::<16>();
    for c in blocks {
        crc = t[15][(c[0] ^ crc as u8) as usize]
            ^ t[14][(c[1] ^ (crc >> 8) as u8) as usize]
            ^ t[13][c[2] as usize]
            ^ t[12][c[3] as usize]
            ^ t[11][c[4] as usize]
            ^ t[10][c[5] as usize]
            ^ t[9][c[6] as usize]
            ^ t[8][c[7] as usize]
            ^ t[7][c[8] as usize]
            ^ t[6][c[9] as usize]
            ^ t[5][c[10] as usize]
            ^ t[4][c[11] as usize]
            ^ t[3][c[12] as usize]
            ^ t[2][c[13] as usize]
            ^ t[1][c[14] as usize]
            ^ t[0][c[15] as usize];
    }
    for &b in rest {
        crc = (crc >> 8) ^ t[0][((crc ^ b as u16) & 0xFF) as usize];
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::crc16;

    fn bitwise(data: &[u8]) -> u16 {
        let mut crc = 0xFFFFu16;
        for &b in data {
            crc ^= b as u16;
            for _ in 0..8 {
                crc = if crc & 1 != 0 { (crc >> 1) ^ 0xA001 } else { crc >> 1 };
            }
        }
        crc
    }

    #[test]
    fn vectors() {
        // Modbus over Serial Line V1.02, 6.2.2: "02 07" gives CRC 0x1241.
        assert_eq!(crc16(&[0x02, 0x07]), 0x1241);
        assert_eq!(crc16(b"123456789"), 0x4B37);
        // Read Holding Registers, unit 1, address 0, quantity 10: CRC bytes C5 CD.
        assert_eq!(crc16(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0A]).to_le_bytes(), [0xC5, 0xCD]);
        assert_eq!(crc16(&[]), 0xFFFF);
    }

    #[test]
    fn matches_bitwise_for_every_length() {
        let data: [u8; 300] = core::array::from_fn(|i| (i * 31 + 7) as u8);
        for n in 0..data.len() {
            assert_eq!(crc16(&data[..n]), bitwise(&data[..n]), "length {n}");
        }
    }
}
