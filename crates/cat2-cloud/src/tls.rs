//! Connections to PostgreSQL, in TLS as the URL's `sslmode` asks.
//!
//! The URL speaks libpq's language, so that the one a DBA hands out works
//! as it is: `sslmode` is `disable` (plain TCP), `prefer` (the default: TLS
//! if the server offers it), `require` (TLS or nothing), `verify-ca` (TLS,
//! and the server's certificate chains to a trusted root) or `verify-full`
//! (that, and the certificate names the host); `sslrootcert` names a PEM
//! file of the roots to trust, else the system's are. As with libpq,
//! `prefer` and `require` encrypt without checking who answers: use
//! `verify-full` where the network is not trusted. tokio-postgres knows the
//! first three modes only, so the two others and `sslrootcert` are taken out
//! of the URL here and become the TLS configuration (rustls on ring, as the
//! rest of the workspace: no C to build).

use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect, TlsStream};
use tokio_postgres::{Client, Config, NoTls};

/// Why a database URL cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("{0}")]
    Parse(#[from] tokio_postgres::Error),
    #[error("sslmode={0:?} is none of disable, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    #[error("reading the root certificates of sslrootcert={0}: {1}")]
    RootCert(PathBuf, String),
    #[error("no root certificates to verify the database server with: {0}")]
    NoRoots(String),
    #[error("setting up TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Where to connect and how.
#[derive(Clone)]
pub struct Target {
    pub config: Config,
    tls: Option<MakeRustls>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("config", &self.config)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Target {
    /// The connection a URL (`postgresql://user@host:port/db?sslmode=…`)
    /// or a `key=value` string describes.
    pub fn parse(url: &str) -> Result<Target, UrlError> {
        let (rest, mode, root_cert) = take_tls_params(url)?;
        let mut config: Config = rest.parse()?;
        let verify = match mode.as_deref() {
            None | Some("prefer") => Verify::Nothing,
            Some("disable") => Verify::Nothing,
            Some("require") => Verify::Nothing,
            Some("verify-ca") => Verify::Chain,
            Some("verify-full") => Verify::ChainAndName,
            Some(other) => return Err(UrlError::SslMode(other.to_string())),
        };
        config.ssl_mode(match mode.as_deref() {
            Some("disable") => SslMode::Disable,
            None | Some("prefer") => SslMode::Prefer,
            _ => SslMode::Require,
        });
        let tls = match mode.as_deref() {
            Some("disable") => None,
            _ => Some(MakeRustls {
                config: Arc::new(client_config(verify, root_cert)?),
            }),
        };
        Ok(Target { config, tls })
    }

    /// A new connection, its driving task spawned on the current runtime.
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        match &self.tls {
            None => {
                let (client, connection) = self.config.connect(NoTls).await?;
                spawn_driver(connection);
                Ok(client)
            }
            Some(tls) => {
                let (client, connection) = self.config.connect(tls.clone()).await?;
                spawn_driver(connection);
                Ok(client)
            }
        }
    }
}

fn spawn_driver<F>(connection: F)
where
    F: Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!("database connection ended: {e}");
        }
    });
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query (or a `key=value`
/// string): what remains, and their values.
fn take_tls_params(url: &str) -> Result<(String, Option<String>, Option<PathBuf>), UrlError> {
    let (mut mode, mut root) = (None, None);
    if url.contains("://") {
        let Ok(mut parsed) = url::Url::parse(url) else {
            // tokio-postgres says what is wrong with it.
            return Ok((url.to_string(), None, None));
        };
        let mut kept = Vec::new();
        for (k, v) in parsed.query_pairs() {
            match k.as_ref() {
                "sslmode" => mode = Some(v.into_owned()),
                "sslrootcert" => root = Some(PathBuf::from(v.into_owned())),
                _ => kept.push((k.into_owned(), v.into_owned())),
            }
        }
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
        return Ok((parsed.to_string(), mode, root));
    }
    let mut kept = Vec::new();
    for word in url.split_whitespace() {
        match word.split_once('=') {
            Some(("sslmode", v)) => mode = Some(v.to_string()),
            Some(("sslrootcert", v)) => root = Some(PathBuf::from(v)),
            _ => kept.push(word),
        }
    }
    Ok((kept.join(" "), mode, root))
}

/// What of the server's certificate is checked.
#[derive(Debug, Clone, Copy)]
enum Verify {
    Nothing,
    Chain,
    ChainAndName,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    verify: Verify,
    root_cert: Option<PathBuf>,
) -> Result<rustls::ClientConfig, UrlError> {
    let provider = provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let verifier: Arc<dyn ServerCertVerifier> = match verify {
        Verify::Nothing => Arc::new(AnyCertificate(provider)),
        Verify::Chain | Verify::ChainAndName => {
            let roots = Arc::new(roots(root_cert)?);
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| UrlError::NoRoots(e.to_string()))?;
            match verify {
                Verify::Chain => Arc::new(ChainOnly(webpki)),
                _ => webpki,
            }
        }
    };
    Ok(builder
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The roots in `file`, else the system's.
fn roots(file: Option<PathBuf>) -> Result<RootCertStore, UrlError> {
    let mut store = RootCertStore::empty();
    match file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(&path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| UrlError::RootCert(path.clone(), e.to_string()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(UrlError::RootCert(path, "no certificate in it".into()));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(UrlError::NoRoots(
                    "the system has none; name a file with sslrootcert".into(),
                ));
            }
        }
    }
    Ok(store)
}

/// `prefer` and `require`: the session is encrypted, the certificate not
/// checked (libpq's meaning of these modes); the handshake's signatures
/// still are.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain is checked, the name in it is not.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres's TLS seam, on tokio-rustls.
#[derive(Clone)]
struct MakeRustls {
    config: Arc<rustls::ClientConfig>,
}

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type TlsConnect = RustlsConnect;
    type Error = rustls::pki_types::InvalidDnsNameError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<RustlsConnect, Self::Error> {
        Ok(RustlsConnect {
            config: self.config.clone(),
            name: ServerName::try_from(domain.to_string())?,
        })
    }
}

struct RustlsConnect {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

type Handshake<S> = Pin<Box<dyn Future<Output = io::Result<RustlsStream<S>>> + Send>>;

impl<S> TlsConnect<S> for RustlsConnect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = RustlsStream<S>;
    type Error = io::Error;
    type Future = Handshake<S>;

    fn connect(self, stream: S) -> Handshake<S> {
        let connector = tokio_rustls::TlsConnector::from(self.config);
        Box::pin(async move {
            let tls = connector.connect(self.name, stream).await?;
            Ok(RustlsStream(Box::new(tls)))
        })
    }
}

struct RustlsStream<S>(Box<tokio_rustls::client::TlsStream<S>>);

impl<S> TlsStream for RustlsStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        // SCRAM without channel binding (tokio-postgres then does not offer
        // SCRAM-SHA-256-PLUS); the session is encrypted all the same.
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for RustlsStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for RustlsStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_parameters_are_taken_out_of_urls() {
        let (rest, mode, root) = take_tls_params(
            "postgresql://u@h:5/db?sslmode=verify-full&application_name=x&sslrootcert=/a/b%20c.pem",
        )
        .unwrap();
        assert_eq!(rest, "postgresql://u@h:5/db?application_name=x");
        assert_eq!(mode.as_deref(), Some("verify-full"));
        assert_eq!(root, Some(PathBuf::from("/a/b c.pem")));
        let (rest, mode, _) = take_tls_params("host=h dbname=d sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), mode.as_deref()),
            ("host=h dbname=d", Some("disable"))
        );
        let (rest, mode, root) = take_tls_params("postgresql://u@h/db").unwrap();
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgresql://u@h/db", None, None)
        );
    }

    #[test]
    fn modes_are_checked() {
        assert!(Target::parse("postgresql://u@h/db?sslmode=disable").is_ok());
        assert!(Target::parse("postgresql://u@h/db?sslmode=require").is_ok());
        assert!(matches!(
            Target::parse("postgresql://u@h/db?sslmode=sometimes"),
            Err(UrlError::SslMode(_))
        ));
        assert!(matches!(
            Target::parse("postgresql://u@h/db?sslmode=verify-full&sslrootcert=/nonexistent.pem"),
            Err(UrlError::RootCert(..))
        ));
    }
}
