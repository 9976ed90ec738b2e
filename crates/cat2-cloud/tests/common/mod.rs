//! What the cloud tests share: fresh stores and databases on the services
//! the environment names (see tests/storage.rs).
#![allow(dead_code)]

use std::time::Duration;

use cat2_cloud::{CloudConfig, CloudStorage};

pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A fresh store: a new database for the catalog and a new prefix in the
/// bucket. `None` when no services are configured.
pub fn fresh_store(grace: Duration) -> Option<CloudStorage> {
    let (Some(endpoint), Some(bucket), Some(admin_url)) = (
        env("CAT2RS_TEST_S3_ENDPOINT"),
        env("CAT2RS_TEST_S3_BUCKET"),
        env("CAT2RS_TEST_DATABASE_URL"),
    ) else {
        assert!(
            env("CAT2RS_REQUIRE_CLOUD").is_none(),
            "CAT2RS_REQUIRE_CLOUD is set but CAT2RS_TEST_S3_* / CAT2RS_TEST_DATABASE_URL are not"
        );
        eprintln!("no S3 endpoint and database configured: skipped");
        return None;
    };
    let (name, db_url) = fresh_database(&admin_url);
    let mut config = CloudConfig::new(&format!("s3://{bucket}/{name}"), &db_url);
    config.endpoint = Some(endpoint);
    config.region = Some(env("CAT2RS_TEST_S3_REGION").unwrap_or_else(|| "us-east-1".into()));
    config.access_key_id = Some(env("CAT2RS_TEST_S3_KEY_ID").unwrap_or_else(|| "test".into()));
    config.secret_access_key = Some(env("CAT2RS_TEST_S3_SECRET").unwrap_or_else(|| "test".into()));
    config.gc_grace = grace;
    Some(CloudStorage::open(&config).expect("the cloud storage opens"))
}

/// A new, empty database beside the one `admin_url` names: its name and URL.
pub fn fresh_database(admin_url: &str) -> (String, String) {
    let name = format!("cat2test_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let target = cat2_cloud::DatabaseTarget::parse(admin_url).expect("a database url");
        let client = target.connect().await.expect("the test database answers");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    });
    // postgresql://user@host:port/db?params → .../<name>?params
    let mut url = url::Url::parse(admin_url).expect("the test database's url is a URL");
    url.set_path(&name);
    (name, url.to_string())
}

/// A fresh database's URL, `None` when none is configured.
pub fn fresh_database_url() -> Option<String> {
    let Some(admin_url) = env("CAT2RS_TEST_DATABASE_URL") else {
        assert!(
            env("CAT2RS_REQUIRE_CLOUD").is_none(),
            "CAT2RS_REQUIRE_CLOUD is set but CAT2RS_TEST_DATABASE_URL is not"
        );
        eprintln!("no database configured: skipped");
        return None;
    };
    Some(fresh_database(&admin_url).1)
}
