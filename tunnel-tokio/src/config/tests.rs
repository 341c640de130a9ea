//! Configuration errors an operator can act on: the file, the line and the
//! key, and every problem at once.

use std::path::Path;

use super::*;

fn dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "outpost-config-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_parse_error_names_file_line_column_and_key() {
    let d = dir();
    let path = write(
        &d,
        "hub.toml",
        "listen = \"127.0.0.1:7443\"\ncredentials = \"c.toml\"\nlisen = 3\n[tls]\ncert = \"a\"\nkey = \"b\"\nagent_ca = \"c\"\n",
    );
    let e = HubConfig::load(&path).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ConfigError::Parse { line: 3, column: 1, .. }), "{text}");
    assert!(text.starts_with(&format!("{}:3:1: ", path.display())), "{text}");
    assert!(text.contains("lisen") && !text.contains('\n'), "{text}");

    let path = write(&d, "bad.toml", "listen = \"nowhere\"\n");
    let text = HubConfig::load(&path).unwrap_err().to_string();
    assert!(text.contains(":1:10:"), "{text}");
    let e = HubConfig::load(d.join("missing.toml")).unwrap_err();
    assert!(
        matches!(e, ConfigError::Read { .. }) && e.to_string().contains("missing.toml"),
        "{e}"
    );
}

#[test]
fn every_problem_is_listed_with_its_key() {
    let d = dir();
    let path = write(
        &d,
        "hub.toml",
        r#"
listen = "127.0.0.1:7443"
credentials = "nope/credentials.toml"
[tls]
cert = "nope/hub.pem"
key = "nope/hub.key"
agent_ca = "nope/ca.pem"

[[gateway]]
listen = "127.0.0.1:5020"

[[secure_gateway]]
listen = "127.0.0.1:8020"
role = "scada"
cert = "nope/hub.pem"
default = { agent = "Plant 7", target = "plc-1" }
"#,
    );
    let e = HubConfig::load(&path).unwrap().prepare().unwrap_err();
    let lines = e.lines();
    for key in [
        "tls",
        "credentials",
        "gateway[0].role",
        "gateway[0].default",
        "secure_gateway[0].role",
        "secure_gateway[0].key",
        "secure_gateway[0].client_ca",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!(": {key}: "))),
            "{key} missing from {lines:#?}"
        );
    }
    assert!(
        lines.iter().all(|l| l.starts_with(&path.display().to_string())),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("nope/hub.pem")),
        "the file is named: {lines:#?}"
    );

    let path = write(
        &d,
        "agent.toml",
        r#"
id = "Plant 7"
secret_file = "nope.secret"
hub = "hub.example"
hub_name = "hub.example"
[tls]
cert = "nope.pem"
key = "nope.key"
hub_ca = "nope-ca.pem"
[[device]]
name = "plc-1"
units = []
[[device]]
name = "plc-1"
tcp = "127.0.0.1:502"
rtu_over_tcp = "127.0.0.1:503"
units = [1]
[[scan]]
name = "g"
device = "plc-9"
unit = 1
interval_ms = 100
points = [{ name = "a", table = "coils", address = 0, type = "bit" }]
[[scan]]
name = "g"
device = "plc-1"
unit = 1
interval_ms = 100
points = [{ name = "a", table = "coils", address = 0, type = "u16" }]
"#,
    );
    let lines = AgentConfig::load(&path).unwrap().prepare().unwrap_err().lines();
    for key in [
        "id",
        "hub",
        "tls",
        "secret_file",
        "device[0].units",
        "device[0]",
        "device[1].name",
        "device[1]",
        "scan[0].device",
        "scan[1].name",
        "scan[1]",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!(": {key}: "))),
            "{key} missing from {lines:#?}"
        );
    }
    assert!(lines.iter().any(|l| l.contains("host:port")), "{lines:#?}");
}

#[test]
fn an_expired_certificate_and_bad_session_settings_are_named() {
    use std::os::unix::fs::PermissionsExt;
    let d = dir();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["hub.example".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    write(&d, "old.pem", &cert.pem());
    let key_path = write(&d, "old.key", &key.serialize_pem());
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    write(&d, "credentials.toml", "[agents]\n");
    std::fs::set_permissions(d.join("credentials.toml"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = write(
        &d,
        "hub.toml",
        r#"
listen = "127.0.0.1:0"
credentials = "credentials.toml"
[tls]
cert = "old.pem"
key = "old.key"
agent_ca = "old.pem"
[session]
max_channels = 0
"#,
    );
    let lines = HubConfig::load(&path).unwrap().prepare().unwrap_err().lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains(": tls.cert: ") && l.contains("expired on")),
        "{lines:#?}"
    );
    assert!(
        lines.iter().any(|l| l.contains(": session.max_channels: ")),
        "{lines:#?}"
    );
}
