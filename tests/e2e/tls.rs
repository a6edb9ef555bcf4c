//! TLS: the native client over rustls, mutual TLS refusing a client without
//! a certificate, and a plain client refused. Certificates are made here.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair};
use wasm_rpyc::tls::{client_config, server_config};
use wasm_rpyc::{ServerConfig, connect, connect_tls};
use wasm_rpyc_tests::{calculator, runtime, serve_with};

/// A CA, and PEM files of certificates it signed, in a fresh directory.
struct Pki {
    dir: PathBuf,
    ca: Certificate,
    ca_key: KeyPair,
}

impl Pki {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("wasm-rpyc-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    /// Writes `<name>.pem` and `<name>.key` for a certificate valid for `names`.
    fn issue(&self, name: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        let (cert_file, key_file) = (
            self.file(&format!("{name}.pem")),
            self.file(&format!("{name}.key")),
        );
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tls_server(pki: &Pki, client_ca: Option<&Path>) -> ServerConfig {
    let (cert, key) = pki.issue("server", &["localhost", "127.0.0.1"]);
    let mut config = ServerConfig::default();
    config.tls = Some(server_config(&cert, &key, client_ca).unwrap());
    config
}

#[tokio::test]
async fn the_native_client_calls_over_tls() {
    let pki = Pki::new("plain");
    let host = serve_with(calculator(&runtime()).await, tls_server(&pki, None)).await;
    let trust = client_config(&pki.file("ca.pem"), None).unwrap();
    for name in ["localhost", "127.0.0.1"] {
        let conn = connect_tls(host.addr, name, trust.clone()).await.unwrap();
        assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);
    }

    // A name the certificate is not for, a client that trusts another CA,
    // and a plain-TCP client are all refused.
    assert!(connect_tls(host.addr, "example.com", trust).await.is_err());
    let stranger = Pki::new("stranger");
    let other_trust = client_config(&stranger.file("ca.pem"), None).unwrap();
    assert!(
        connect_tls(host.addr, "localhost", other_trust)
            .await
            .is_err()
    );
    let plain = connect(host.addr).await.unwrap();
    assert!(plain.root().call::<i64>("add", (4, 7)).await.is_err());
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate() {
    let pki = Pki::new("mutual");
    let config = tls_server(&pki, Some(&pki.file("ca.pem")));
    let host = serve_with(calculator(&runtime()).await, config).await;
    let (cert, key) = pki.issue("client", &["client"]);

    let with_cert = client_config(&pki.file("ca.pem"), Some((&cert, &key))).unwrap();
    let conn = connect_tls(host.addr, "localhost", with_cert)
        .await
        .unwrap();
    assert_eq!(conn.root().call::<i64>("add", (4, 7)).await.unwrap(), 11);

    let without = client_config(&pki.file("ca.pem"), None).unwrap();
    // TLS 1.3 finishes the client's side of the handshake before the server
    // checks; the refusal shows at the first call at the latest.
    if let Ok(conn) = connect_tls(host.addr, "localhost", without).await {
        assert!(conn.root().call::<i64>("add", (4, 7)).await.is_err());
    }
}
