//! The S3-compatible blob store against a real S3 server (s3s-fs) on loopback: kiln serve keeps
//! `.crate` files there, serves them back, and notices when one was changed behind its back.

use std::net::SocketAddr;

use kiln_policy::Digest;
use kiln_tests::crate_file::{CrateFile, metadata, publish_body};
use kiln_tests::server::{KilnServer, ServerOptions};

const ACCESS_KEY: &str = "kiln-test-access";
const SECRET_KEY: &str = "kiln-test-secret-key";
const BUCKET: &str = "kiln-blobs";

/// An s3s-fs server on a loopback port, storing objects under `root/BUCKET/`.
struct S3Server {
    address: SocketAddr,
    root: tempfile::TempDir,
}

impl S3Server {
    fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join(BUCKET)).unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        let dir = root.path().to_owned();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let fs = s3s_fs::FileSystem::new(&dir).unwrap();
                let mut builder = s3s::service::S3ServiceBuilder::new(fs);
                builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
                let service = builder.build();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                sender.send(listener.local_addr().unwrap()).unwrap();
                let http = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                loop {
                    let Ok((socket, _)) = listener.accept().await else {
                        continue;
                    };
                    let conn = http
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                        .into_owned();
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
            });
        });
        let address = receiver.recv().unwrap();
        Self { address, root }
    }

    fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", format!("http://{}", self.address)),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }

    fn object_path(&self, digest: &Digest) -> std::path::PathBuf {
        self.root
            .path()
            .join(BUCKET)
            .join("sha256")
            .join(digest.hex())
    }
}

#[test]
fn kiln_serve_keeps_crates_in_an_s3_bucket() {
    let s3 = S3Server::start();
    let server = KilnServer::start_with(ServerOptions {
        blob_store: Some(format!("s3://{BUCKET}")),
        env: s3.env(),
        ..ServerOptions::default()
    });
    let alice = server.token("alice", &["publish"]);
    let tarball = CrateFile::valid("in-s3", "0.1.0").gzip();
    let digest = Digest::of(&tarball);
    let body = publish_body(metadata("in-s3", "0.1.0").to_string().as_bytes(), &tarball);
    let response = server
        .request(reqwest::Method::PUT, "/api/v1/crates/new", Some(&alice))
        .body(body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().unwrap());
    assert_eq!(
        std::fs::read(s3.object_path(&digest)).unwrap(),
        tarball,
        "the object is in the bucket"
    );
    assert!(
        !server.blob_dir().join("sha256").exists(),
        "nothing was written to the local blob directory"
    );

    let worker = server.token("builder", &["worker"]);
    server.pass_audit_and_build(&worker, "in-s3", "0.1.0");
    assert_eq!(server.approve(&server.admin_token, "in-s3", "0.1.0").0, 200);
    let served = server
        .request(
            reqwest::Method::GET,
            "/api/v1/crates/in-s3/0.1.0/download",
            None,
        )
        .send()
        .unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(&served.bytes().unwrap()[..], &tarball[..]);

    // An object changed in the bucket is refused, not served.
    std::fs::write(s3.object_path(&digest), b"tampered").unwrap();
    let served = server
        .request(
            reqwest::Method::GET,
            "/api/v1/crates/in-s3/0.1.0/download",
            None,
        )
        .send()
        .unwrap();
    assert_eq!(served.status(), 500);
    assert_eq!(server.get_json("/healthz", None)["status"], "ok");
}
