//! A fresh PostgreSQL database per test, on the server `KILN_TEST_DATABASE_URL` names
//! (./scripts/test sets it to the local server). In CI a missing server is a failure, not a skip.

use std::sync::OnceLock;

/// The server's URL, from `KILN_TEST_DATABASE_URL`.
pub fn server_url() -> String {
    std::env::var("KILN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// A database created for one test and dropped with it.
pub struct TestDatabase {
    /// Its URL.
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Creates a new, empty database.
    pub fn create() -> Self {
        let name = format!("kiln_test_{}", rand::random::<u64>());
        let server = server_url();
        runtime().block_on(async {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&server)
                .await
                .unwrap_or_else(|err| {
                    panic!("PostgreSQL at {server} is needed for this test: {err}")
                });
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut conn)
                .await
                .unwrap();
        });
        let base = server
            .rsplit_once('/')
            .map_or(server.as_str(), |(base, _)| base)
            .to_owned();
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = server_url();
        let name = self.name.clone();
        let _ = runtime().block_on(async move {
            use sqlx::Connection as _;
            let mut conn = sqlx::PgConnection::connect(&server).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut conn)
                .await
        });
    }
}
