//! TLS to PostgreSQL as libpq's `sslmode` says, against the test cluster's
//! database (scripts/cluster.sh starts it with TLS on, its certificate for
//! 127.0.0.1 signed by a CA of its own, and names that CA with `sslrootcert`
//! in CAT2RS_TEST_DATABASE_URL). Skipped when the URL asks for no
//! verification (another database), unless CAT2RS_REQUIRE_CLOUD=1.

use cat2_cloud::DatabaseTarget;

mod common;

/// The test database's URL when it is the TLS one of the cluster script.
fn tls_url() -> Option<url::Url> {
    let url = common::env("CAT2RS_TEST_DATABASE_URL")?;
    let url = url::Url::parse(&url).expect("a URL");
    if !url
        .query_pairs()
        .any(|(k, v)| k == "sslmode" && v == "verify-full")
    {
        assert!(
            common::env("CAT2RS_REQUIRE_CLOUD").is_none(),
            "CAT2RS_REQUIRE_CLOUD is set but the test database is not the TLS one of scripts/cluster.sh"
        );
        eprintln!("the test database is not reached with sslmode=verify-full: skipped");
        return None;
    }
    Some(url)
}

/// `url` with its `sslmode` and `sslrootcert` replaced (absent: left out),
/// and another host name if given.
fn with(url: &url::Url, mode: &str, root: Option<&str>, host: Option<&str>) -> String {
    let mut out = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "sslmode" && k != "sslrootcert")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut pairs = out.query_pairs_mut();
    pairs
        .clear()
        .extend_pairs(kept)
        .append_pair("sslmode", mode);
    if let Some(root) = root {
        pairs.append_pair("sslrootcert", root);
    }
    drop(pairs);
    if let Some(host) = host {
        out.set_host(Some(host)).unwrap();
    }
    out.to_string()
}

/// Whether a session opens and says it is encrypted.
fn encrypted(url: &str) -> Result<bool, String> {
    let target = DatabaseTarget::parse(url).map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = target.connect().await.map_err(|e| e.to_string())?;
        let row = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get::<_, bool>(0))
    })
}

#[test]
fn sessions_are_encrypted_and_checked_as_sslmode_says() {
    let Some(url) = tls_url() else { return };
    let ca: String = url
        .query_pairs()
        .find(|(k, _)| k == "sslrootcert")
        .map(|(_, v)| v.into_owned())
        .expect("the cluster's URL names its CA");
    assert_eq!(
        encrypted(url.as_str()),
        Ok(true),
        "verify-full with the cluster's CA"
    );
    assert_eq!(encrypted(&with(&url, "disable", None, None)), Ok(false));
    assert_eq!(
        encrypted(&with(&url, "prefer", None, None)),
        Ok(true),
        "encrypted, not checked"
    );
    assert_eq!(encrypted(&with(&url, "require", None, None)), Ok(true));
    // Not signed by a CA the system trusts.
    let refused = encrypted(&with(&url, "verify-ca", None, None));
    assert!(refused.is_err(), "{refused:?}");
    // The certificate is for 127.0.0.1, not for localhost: the chain holds,
    // the name does not.
    let localhost = Some("localhost");
    assert_eq!(
        encrypted(&with(&url, "verify-ca", Some(&ca), localhost)),
        Ok(true)
    );
    let refused = encrypted(&with(&url, "verify-full", Some(&ca), localhost));
    assert!(refused.is_err(), "{refused:?}");
}
