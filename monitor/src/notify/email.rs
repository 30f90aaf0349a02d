//! E-mail over SMTP with `lettre` (`[notify.smtp]`): TLS with rustls,
//! certificates checked against the system store and `ca_file`, AUTH
//! PLAIN or LOGIN. A 5xx from the relay is permanent; everything else
//! (connection, TLS, 4xx) is retried.

use std::time::Duration;

use futures_util::future::BoxFuture;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};

use super::channel::{Channel, Failure, Message, Sent};
use crate::config::SmtpConfig;
use crate::error::{Error, Result};
use crate::policy::ChannelKind;

/// The relay and the sender.
#[derive(Debug, Clone)]
pub struct Email {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Email {
    /// Builds the transport.
    pub fn new(s: &SmtpConfig) -> Result<Self> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|_| Error::Invalid("notify.smtp.from: not an e-mail address".into()))?;
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            .port(s.port)
            .tls(smtp_tls(s)?)
            .timeout(Some(Duration::from_millis(s.timeout_ms)));
        if let (Some(user), Some(pw)) = (&s.username, &s.password) {
            // AUTH PLAIN or LOGIN, the first the relay offers (lettre's
            // default order); validation refused them on a plain
            // connection to another host.
            b = b.credentials(Credentials::new(user.clone(), pw.expose().to_owned()));
        }
        Ok(Self {
            transport: b.build(),
            from,
        })
    }

    fn classify(e: &lettre::transport::smtp::Error) -> Failure {
        let reason = format!("smtp: {e}");
        // 530/534/535: authentication. The relay is there and the message
        // is fine; the credentials can be fixed, so keep trying (slowly).
        let auth = e
            .status()
            .map(|c| c.to_string())
            .is_some_and(|c| matches!(c.as_str(), "530" | "534" | "535"));
        if e.is_permanent() && !auth {
            Failure::Permanent { reason }
        } else {
            Failure::Retry {
                reason,
                after_ms: None,
            }
        }
    }

    /// Sends a built message.
    async fn send_mail(&self, msg: Mail) -> std::result::Result<(), Failure> {
        self.transport
            .send(msg)
            .await
            .map(|_| ())
            .map_err(|e| Self::classify(&e))
    }

    /// A report mail: `text` and `html` as alternatives, plus one
    /// attachment.
    #[allow(clippy::too_many_arguments)]
    pub async fn report(
        &self,
        to: &str,
        subject: &str,
        text: String,
        html: String,
        filename: String,
        mime: &str,
        bytes: Vec<u8>,
    ) -> std::result::Result<(), Failure> {
        use lettre::message::header::ContentType;
        use lettre::message::{Attachment, MultiPart};
        let bad = |reason: String| Failure::Permanent { reason };
        let to: Mailbox = to.parse().map_err(|_| bad(format!("bad address {to:?}")))?;
        let ct = ContentType::parse(mime).map_err(|e| bad(format!("{mime}: {e}")))?;
        let msg = Mail::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(
                MultiPart::mixed()
                    .multipart(MultiPart::alternative_plain_html(text, html))
                    .singlepart(Attachment::new(filename).body(bytes, ct)),
            )
            .map_err(|e| bad(e.to_string()))?;
        self.send_mail(msg).await
    }
}

impl Channel for Email {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Email
    }

    fn send<'a>(&'a self, m: &'a Message<'a>) -> BoxFuture<'a, std::result::Result<Sent, Failure>> {
        Box::pin(async move {
            let to: Mailbox = m.target.parse().map_err(|_| Failure::Permanent {
                reason: format!("bad address {:?}", m.target),
            })?;
            let msg = Mail::builder()
                .from(self.from.clone())
                .to(to)
                .subject(m.title)
                .body(format!("{}\n\n-- \n{}\n", m.body, m.delivery_id))
                .map_err(|e| Failure::Permanent {
                    reason: e.to_string(),
                })?;
            self.send_mail(msg).await.map(|()| Sent::default())
        })
    }
}

/// The TLS mode of `[notify.smtp]`: rustls, verifying the relay's
/// certificate for `host` against the system's CA store and `ca_file`.
fn smtp_tls(s: &SmtpConfig) -> Result<lettre::transport::smtp::client::Tls> {
    use crate::config::SmtpTls;
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    if s.tls == SmtpTls::None {
        return Ok(Tls::None);
    }
    let mut b = TlsParameters::builder(s.host.clone());
    if let Some(path) = &s.ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| Error::Invalid(format!("notify.smtp.ca_file: cannot read {path}: {e}")))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            Error::Invalid(format!(
                "notify.smtp.ca_file: {path} is not a PEM certificate: {e}"
            ))
        })?;
        b = b.add_root_certificate(cert);
    }
    let p = b
        .build_rustls()
        .map_err(|e| Error::Invalid(format!("notify.smtp.tls: {e}")))?;
    Ok(match s.tls {
        SmtpTls::Starttls => Tls::Required(p),
        _ => Tls::Wrapper(p),
    })
}
