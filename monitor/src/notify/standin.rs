//! Local stand-ins of the providers' HTTP APIs, for the tests and the
//! demo (the real ones are not reachable from the build machines): one
//! loopback server that answers as Alibaba Cloud SMS and voice, Tencent
//! Cloud SMS, a WeCom, a DingTalk and a Feishu robot would, after checking
//! each request as the providers document it: the required parameters or
//! JSON fields, the credentials, the signature recomputed from the request
//! as received (method, parameters, headers, body), the timestamp's
//! freshness and, for Alibaba Cloud, that a `SignatureNonce` is never used
//! twice. A request that fails a check gets the provider's error answer
//! (and is listed in [`Standin::refused`]); an accepted one is recorded
//! ([`Standin::received`]). Answers can be scripted ([`Standin::script`]):
//! a provider error code, an HTTP status, a delay.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

use super::{aliyun, sign, tencent};

/// The credentials the stand-in accepts (give the monitor the same).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Alibaba Cloud AccessKeyId.
    pub aliyun_id: String,
    /// Alibaba Cloud AccessKeySecret.
    pub aliyun_secret: String,
    /// Tencent Cloud SecretId.
    pub tencent_id: String,
    /// Tencent Cloud SecretKey.
    pub tencent_key: String,
    /// Tencent Cloud SmsSdkAppId.
    pub tencent_app: String,
    /// The WeCom robot's key.
    pub wecom_key: String,
    /// The DingTalk robot's access token.
    pub dingtalk_token: String,
    /// The DingTalk robot's signing secret.
    pub dingtalk_secret: String,
    /// The Feishu bot's hook id.
    pub feishu_hook: String,
    /// The Feishu bot's signing secret.
    pub feishu_secret: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            aliyun_id: "LTAI-standin-key".into(),
            aliyun_secret: "standin-aliyun-secret".into(),
            tencent_id: "AKID-standin".into(),
            tencent_key: "standin-tencent-key".into(),
            tencent_app: "1400000000".into(),
            wecom_key: "693a91f6-7xxx-standin".into(),
            dingtalk_token: "standin-dingtalk-token".into(),
            dingtalk_secret: "SECstandin-dingtalk".into(),
            feishu_hook: "standin-feishu-hook".into(),
            feishu_secret: "standin-feishu-secret".into(),
        }
    }
}

/// A message a provider accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// `aliyun-sms`, `aliyun-voice`, `tencent-sms`, `wecom`, `dingtalk`,
    /// `feishu`.
    pub provider: &'static str,
    /// The phone number (SMS, voice) or the robot.
    pub to: String,
    /// The template code (SMS, voice).
    pub template: String,
    /// The template variables (an object for Alibaba Cloud, an array for
    /// Tencent Cloud) or, for robots, the whole JSON body.
    pub params: Value,
    /// The robots' text.
    pub text: String,
    /// Numbers mentioned (robots).
    pub mentions: Vec<String>,
    /// The id the stand-in answered with (BizId, SerialNo, CallId).
    pub id: String,
    /// The `OutId` / `SessionContext` sent.
    pub out_id: String,
}

/// A scripted answer for the next request to a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scripted {
    /// The provider's error code (`isv.BUSINESS_LIMIT_CONTROL`,
    /// `LimitExceeded.PhoneNumberThirtySecondLimit`, `45009`, …).
    Code(String),
    /// An HTTP status with an empty body.
    Status(u16),
    /// Wait this long, then answer normally.
    Delay(u64),
}

#[derive(Debug, Default)]
struct Inner {
    received: Vec<Received>,
    refused: Vec<String>,
    nonces: HashSet<String>,
    script: HashMap<&'static str, VecDeque<Scripted>>,
    seq: u64,
}

/// The running stand-in.
#[derive(Debug, Clone)]
pub struct Standin {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// What it accepts.
    pub creds: Credentials,
    inner: Arc<Mutex<Inner>>,
}

type S = (Credentials, Arc<Mutex<Inner>>);

impl Standin {
    /// Starts on a free loopback port.
    pub async fn start(creds: Credentials) -> std::io::Result<Self> {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let app = Router::new()
            .route("/aliyun/sms/", post(aliyun_sms))
            .route("/aliyun/voice/", post(aliyun_voice))
            .route("/tencent/", post(tencent_sms))
            .route("/cgi-bin/webhook/send", post(wecom))
            .route("/robot/send", post(dingtalk))
            .route("/open-apis/bot/v2/hook/{hook}", post(feishu))
            .with_state((creds.clone(), inner.clone()));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", l.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Ok(Self { base, creds, inner })
    }

    /// Alibaba Cloud SMS endpoint (`[notify.sms] endpoint`).
    pub fn aliyun_sms(&self) -> String {
        format!("{}/aliyun/sms/", self.base)
    }

    /// Alibaba Cloud voice endpoint (`[notify.voice] endpoint`).
    pub fn aliyun_voice(&self) -> String {
        format!("{}/aliyun/voice/", self.base)
    }

    /// Tencent Cloud SMS endpoint.
    pub fn tencent(&self) -> String {
        format!("{}/tencent/", self.base)
    }

    /// The WeCom robot's URL.
    pub fn wecom(&self) -> String {
        format!(
            "{}/cgi-bin/webhook/send?key={}",
            self.base, self.creds.wecom_key
        )
    }

    /// The DingTalk robot's URL.
    pub fn dingtalk(&self) -> String {
        format!(
            "{}/robot/send?access_token={}",
            self.base, self.creds.dingtalk_token
        )
    }

    /// The Feishu bot's URL.
    pub fn feishu(&self) -> String {
        format!(
            "{}/open-apis/bot/v2/hook/{}",
            self.base, self.creds.feishu_hook
        )
    }

    /// Everything accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner
            .lock()
            .map(|i| i.received.clone())
            .unwrap_or_default()
    }

    /// Takes everything accepted so far.
    pub fn take(&self) -> Vec<Received> {
        self.inner
            .lock()
            .map(|mut i| std::mem::take(&mut i.received))
            .unwrap_or_default()
    }

    /// Every refused request, with why.
    pub fn refused(&self) -> Vec<String> {
        self.inner
            .lock()
            .map(|i| i.refused.clone())
            .unwrap_or_default()
    }

    /// Scripts the next answers of `provider`.
    pub fn script(&self, provider: &'static str, answers: impl IntoIterator<Item = Scripted>) {
        if let Ok(mut i) = self.inner.lock() {
            i.script.entry(provider).or_default().extend(answers);
        }
    }
}

fn next_script(inner: &Mutex<Inner>, provider: &'static str) -> Option<Scripted> {
    inner
        .lock()
        .ok()
        .and_then(|mut i| i.script.get_mut(provider).and_then(VecDeque::pop_front))
}

fn refuse(inner: &Mutex<Inner>, provider: &str, why: String) {
    tracing::warn!(provider, %why, "stand-in refused a request");
    if let Ok(mut i) = inner.lock() {
        i.refused.push(format!("{provider}: {why}"));
    }
}

fn accept(inner: &Mutex<Inner>, mut r: Received) -> String {
    let Ok(mut i) = inner.lock() else {
        return String::new();
    };
    i.seq += 1;
    r.id = format!("{}-{}", r.provider, i.seq);
    let id = r.id.clone();
    i.received.push(r);
    id
}

fn wall_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Applies a scripted answer: `Some(response)` replaces the normal one.
async fn scripted(
    inner: &Mutex<Inner>,
    provider: &'static str,
    error: impl Fn(&str) -> Response,
) -> Option<Response> {
    match next_script(inner, provider)? {
        Scripted::Delay(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        Scripted::Status(s) => Some(
            StatusCode::from_u16(s)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response(),
        ),
        Scripted::Code(c) => Some(error(&c)),
    }
}

fn aliyun_error(code: &str, msg: &str) -> Response {
    let status = match code {
        "SignatureDoesNotMatch" | "InvalidAccessKeyId.NotFound" | "MissingParameter" => {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    (
        status,
        axum::Json(
            json!({"Code": code, "Message": msg, "RequestId": uuid::Uuid::new_v4().to_string()}),
        ),
    )
        .into_response()
}

/// Checks an Alibaba Cloud RPC request; the parameters when it passes.
fn aliyun_check(
    (creds, inner): &S,
    provider: &'static str,
    action: &str,
    body: &[u8],
    required: &[&str],
) -> Result<HashMap<String, String>, Box<Response>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|e| {
        refuse(inner, provider, format!("body is not a form: {e}"));
        Box::new(aliyun_error(
            "InvalidParameter",
            "the body is not form-encoded",
        ))
    })?;
    let p: HashMap<String, String> = pairs.iter().cloned().collect();
    let fail = |code: &str, why: String| {
        refuse(inner, provider, why.clone());
        Box::new(aliyun_error(code, &why))
    };
    for k in [
        "AccessKeyId",
        "Action",
        "Format",
        "RegionId",
        "SignatureMethod",
        "SignatureNonce",
        "SignatureVersion",
        "Timestamp",
        "Version",
        "Signature",
    ]
    .iter()
    .chain(required)
    {
        if p.get(*k).is_none_or(String::is_empty) {
            return Err(fail("MissingParameter", format!("{k} is missing")));
        }
    }
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    if get("Action") != action || get("Version") != aliyun::VERSION {
        return Err(fail(
            "InvalidAction",
            format!("Action {} Version {}", get("Action"), get("Version")),
        ));
    }
    if get("SignatureMethod") != "HMAC-SHA1" || get("SignatureVersion") != "1.0" {
        return Err(fail(
            "InvalidParameter",
            "signature method or version".into(),
        ));
    }
    if get("AccessKeyId") != creds.aliyun_id {
        return Err(fail(
            "InvalidAccessKeyId.NotFound",
            format!("unknown AccessKeyId {}", get("AccessKeyId")),
        ));
    }
    let ts = chrono::DateTime::parse_from_rfc3339(get("Timestamp")).map_err(|_| {
        fail(
            "InvalidTimeStamp.Format",
            format!("Timestamp {:?} is not ISO 8601 UTC", get("Timestamp")),
        )
    })?;
    if (ts.timestamp() - wall_s()).abs() > 900 {
        return Err(fail(
            "InvalidTimeStamp.Expired",
            "Timestamp is stale".into(),
        ));
    }
    let want = sign::aliyun_signature("POST", &pairs, &creds.aliyun_secret);
    if get("Signature") != want {
        return Err(fail(
            "SignatureDoesNotMatch",
            "the signature does not match the request".into(),
        ));
    }
    let fresh = inner
        .lock()
        .map(|mut i| i.nonces.insert(get("SignatureNonce").to_string()))
        .unwrap_or(false);
    if !fresh {
        return Err(fail(
            "SignatureNonceUsed",
            "SignatureNonce used before (replay)".into(),
        ));
    }
    if let Some(t) = p.get("TemplateParam").or_else(|| p.get("TtsParam"))
        && !serde_json::from_str::<Value>(t).is_ok_and(|v| v.is_object())
    {
        return Err(fail(
            "isv.INVALID_JSON_PARAM",
            "TemplateParam/TtsParam is not a JSON object".into(),
        ));
    }
    if let Some(o) = p.get("OutId")
        && o.len() > 15
    {
        return Err(fail("isv.INVALID_PARAMETERS", "OutId over 15 bytes".into()));
    }
    Ok(p)
}

async fn aliyun_sms(State(s): State<S>, body: Bytes) -> Response {
    const P: &str = "aliyun-sms";
    if let Some(r) = scripted(&s.1, P, |c| aliyun_error(c, "scripted")).await {
        return r;
    }
    let p = match aliyun_check(
        &s,
        P,
        "SendSms",
        &body,
        &["PhoneNumbers", "SignName", "TemplateCode"],
    ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    let params: Value = serde_json::from_str(&get("TemplateParam")).unwrap_or(Value::Null);
    let id = accept(
        &s.1,
        Received {
            provider: P,
            to: get("PhoneNumbers"),
            template: get("TemplateCode"),
            params,
            text: String::new(),
            mentions: Vec::new(),
            id: String::new(),
            out_id: get("OutId"),
        },
    );
    axum::Json(json!({"Code": "OK", "Message": "OK", "BizId": id, "RequestId": uuid::Uuid::new_v4().to_string()}))
        .into_response()
}

async fn aliyun_voice(State(s): State<S>, body: Bytes) -> Response {
    const P: &str = "aliyun-voice";
    if let Some(r) = scripted(&s.1, P, |c| aliyun_error(c, "scripted")).await {
        return r;
    }
    let p = match aliyun_check(
        &s,
        P,
        "SingleCallByTts",
        &body,
        &["CalledNumber", "TtsCode"],
    ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let get = |k: &str| p.get(k).cloned().unwrap_or_default();
    if let Some(n) = p.get("PlayTimes")
        && !matches!(n.as_str(), "1" | "2" | "3")
    {
        refuse(&s.1, P, format!("PlayTimes {n}"));
        return aliyun_error("isv.INVALID_PARAMETERS", "PlayTimes must be 1-3");
    }
    let params: Value = serde_json::from_str(&get("TtsParam")).unwrap_or(Value::Null);
    let id = accept(
        &s.1,
        Received {
            provider: P,
            to: get("CalledNumber"),
            template: get("TtsCode"),
            params,
            text: String::new(),
            mentions: Vec::new(),
            id: String::new(),
            out_id: get("OutId"),
        },
    );
    axum::Json(json!({"Code": "OK", "Message": "OK", "CallId": id, "RequestId": uuid::Uuid::new_v4().to_string()}))
        .into_response()
}

fn tencent_error(code: &str, msg: &str) -> Response {
    axum::Json(json!({"Response": {"Error": {"Code": code, "Message": msg},
        "RequestId": uuid::Uuid::new_v4().to_string()}}))
    .into_response()
}

async fn tencent_sms(State(s): State<S>, h: HeaderMap, body: Bytes) -> Response {
    const P: &str = "tencent-sms";
    let (creds, inner) = &s;
    let fail = |code: &str, why: String| {
        refuse(inner, P, why.clone());
        tencent_error(code, &why)
    };
    let hv = |k: &str| {
        h.get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    if hv("x-tc-action") != "SendSms" || hv("x-tc-version") != tencent::VERSION {
        return fail(
            "InvalidAction",
            format!(
                "X-TC-Action {} X-TC-Version {}",
                hv("x-tc-action"),
                hv("x-tc-version")
            ),
        );
    }
    if hv("x-tc-region").is_empty() {
        return fail("MissingParameter", "X-TC-Region is missing".into());
    }
    let Ok(ts) = hv("x-tc-timestamp").parse::<i64>() else {
        return fail("MissingParameter", "X-TC-Timestamp is missing".into());
    };
    if (ts - wall_s()).abs() > 300 {
        return fail(
            "AuthFailure.SignatureExpire",
            "the timestamp is over 5 minutes off".into(),
        );
    }
    // Authorization: TC3-HMAC-SHA256 Credential=id/date/sms/tc3_request,
    // SignedHeaders=content-type;host, Signature=hex
    let auth = hv("authorization");
    let Some(rest) = auth.strip_prefix("TC3-HMAC-SHA256 ") else {
        return fail(
            "AuthFailure.InvalidAuthorization",
            "not TC3-HMAC-SHA256".into(),
        );
    };
    let fields: HashMap<&str, &str> = rest
        .split(", ")
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let cred = fields.get("Credential").copied().unwrap_or("");
    let parts: Vec<&str> = cred.split('/').collect();
    if parts.len() != 4
        || parts[0] != creds.tencent_id
        || parts[2] != "sms"
        || parts[3] != "tc3_request"
    {
        return fail(
            "AuthFailure.SecretIdNotFound",
            format!("Credential {cred:?}"),
        );
    }
    if fields.get("SignedHeaders") != Some(&"content-type;host") {
        return fail("AuthFailure.InvalidAuthorization", "SignedHeaders".into());
    }
    let ct = hv("content-type");
    let (_, _, want) = sign::tc3(
        &sign::Tc3 {
            service: "sms",
            host: &hv("host"),
            content_type: &ct,
            payload: &body,
            timestamp: ts,
        },
        &creds.tencent_key,
    );
    let date_ok = chrono::DateTime::from_timestamp(ts, 0)
        .is_some_and(|d| d.format("%Y-%m-%d").to_string() == parts[1]);
    if fields.get("Signature") != Some(&want.as_str()) || !date_ok {
        return fail(
            "AuthFailure.SignatureFailure",
            "the signature does not match the request".into(),
        );
    }
    if let Some(r) = scripted(inner, P, |c| {
        axum::Json(
            json!({"Response": {"SendStatusSet": [{"SerialNo": "", "PhoneNumber": "",
            "Code": c, "Message": "scripted"}], "RequestId": "r"}}),
        )
        .into_response()
    })
    .await
    {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return fail("InvalidParameter", "the body is not JSON".into());
    };
    if v["SmsSdkAppId"] != creds.tencent_app.as_str() {
        return fail(
            "InvalidParameterValue.SdkAppIdNotExist",
            "SmsSdkAppId".into(),
        );
    }
    let phones = v["PhoneNumberSet"].as_array().cloned().unwrap_or_default();
    if phones.len() != 1 || !phones[0].as_str().is_some_and(|p| p.starts_with('+')) {
        return fail(
            "InvalidParameterValue.IncorrectPhoneNumber",
            format!("PhoneNumberSet {:?}", v["PhoneNumberSet"]),
        );
    }
    for k in ["SignName", "TemplateId"] {
        if v[k].as_str().is_none_or(str::is_empty) {
            return fail("MissingParameter", format!("{k} is missing"));
        }
    }
    if !v["TemplateParamSet"]
        .as_array()
        .is_some_and(|a| a.iter().all(Value::is_string))
    {
        return fail(
            "InvalidParameterValue.TemplateParameterFormatError",
            "TemplateParamSet must be strings".into(),
        );
    }
    let phone = phones[0].as_str().unwrap_or_default().to_string();
    let id = accept(
        inner,
        Received {
            provider: P,
            to: phone.clone(),
            template: v["TemplateId"].as_str().unwrap_or_default().into(),
            params: v["TemplateParamSet"].clone(),
            text: String::new(),
            mentions: Vec::new(),
            id: String::new(),
            out_id: v["SessionContext"].as_str().unwrap_or_default().into(),
        },
    );
    axum::Json(
        json!({"Response": {"SendStatusSet": [{"SerialNo": id, "PhoneNumber": phone,
        "Fee": 1, "SessionContext": v["SessionContext"], "Code": "Ok", "Message": "send success",
        "IsoCode": "CN"}], "RequestId": uuid::Uuid::new_v4().to_string()}}),
    )
    .into_response()
}

async fn wecom(
    State(s): State<S>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    const P: &str = "wecom";
    let (creds, inner) = &s;
    let err =
        |code: i64, msg: &str| axum::Json(json!({"errcode": code, "errmsg": msg})).into_response();
    if let Some(r) = scripted(inner, P, |c| err(c.parse().unwrap_or(-1), "scripted")).await {
        return r;
    }
    if q.get("key") != Some(&creds.wecom_key) {
        refuse(inner, P, "wrong key".into());
        return err(93000, "invalid webhook url");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        refuse(inner, P, "not JSON".into());
        return err(40008, "invalid message type");
    };
    let content = v["text"]["content"].as_str().unwrap_or_default();
    if v["msgtype"] != "text" || content.is_empty() || content.len() > 2048 {
        refuse(inner, P, format!("bad text message: {v}"));
        return err(40008, "invalid message type or content");
    }
    let mentions: Vec<String> = v["text"]["mentioned_mobile_list"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    accept(
        inner,
        Received {
            provider: P,
            to: "wecom".into(),
            template: String::new(),
            params: v.clone(),
            text: content.into(),
            mentions,
            id: String::new(),
            out_id: String::new(),
        },
    );
    err(0, "ok")
}

async fn dingtalk(
    State(s): State<S>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    const P: &str = "dingtalk";
    let (creds, inner) = &s;
    let err =
        |code: i64, msg: &str| axum::Json(json!({"errcode": code, "errmsg": msg})).into_response();
    if let Some(r) = scripted(inner, P, |c| err(c.parse().unwrap_or(-1), "scripted")).await {
        return r;
    }
    if q.get("access_token") != Some(&creds.dingtalk_token) {
        refuse(inner, P, "wrong access_token".into());
        return err(300001, "token is not exist");
    }
    let ts: i64 = q.get("timestamp").and_then(|t| t.parse().ok()).unwrap_or(0);
    // Query parsing already url-decoded `sign` once.
    let got = q.get("sign").cloned().unwrap_or_default();
    if (ts / 1000 - wall_s()).abs() > 3_600 || got != sign::dingtalk(&creds.dingtalk_secret, ts) {
        refuse(inner, P, "sign or timestamp refused".into());
        return err(310000, "sign not match");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        refuse(inner, P, "not JSON".into());
        return err(400013, "invalid json");
    };
    let content = v["text"]["content"].as_str().unwrap_or_default();
    if v["msgtype"] != "text" || content.is_empty() {
        refuse(inner, P, format!("bad text message: {v}"));
        return err(400101, "invalid message");
    }
    let mentions: Vec<String> = v["at"]["atMobiles"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    accept(
        inner,
        Received {
            provider: P,
            to: "dingtalk".into(),
            template: String::new(),
            params: v.clone(),
            text: content.into(),
            mentions,
            id: String::new(),
            out_id: String::new(),
        },
    );
    err(0, "ok")
}

async fn feishu(State(s): State<S>, Path(hook): Path<String>, body: Bytes) -> Response {
    const P: &str = "feishu";
    let (creds, inner) = &s;
    let err = |code: i64, msg: &str| {
        axum::Json(json!({"code": code, "msg": msg, "data": {}})).into_response()
    };
    if let Some(r) = scripted(inner, P, |c| err(c.parse().unwrap_or(-1), "scripted")).await {
        return r;
    }
    if hook != creds.feishu_hook {
        refuse(inner, P, "unknown hook".into());
        return err(
            19001,
            "param invalid: incoming webhook access token invalid",
        );
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        refuse(inner, P, "not JSON".into());
        return err(9499, "Bad Request");
    };
    let ts: i64 = v["timestamp"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    if (ts - wall_s()).abs() > 3_600
        || v["sign"].as_str() != Some(&sign::feishu(&creds.feishu_secret, ts))
    {
        refuse(inner, P, "sign or timestamp refused".into());
        return err(
            19021,
            "sign match fail or timestamp is not within one hour from current time",
        );
    }
    let text = v["content"]["text"].as_str().unwrap_or_default();
    if v["msg_type"] != "text" || text.is_empty() {
        refuse(inner, P, format!("bad text message: {v}"));
        return err(19002, "params error, msg_type need");
    }
    accept(
        inner,
        Received {
            provider: P,
            to: "feishu".into(),
            template: String::new(),
            params: v.clone(),
            text: text.into(),
            mentions: Vec::new(),
            id: String::new(),
            out_id: String::new(),
        },
    );
    err(0, "success")
}
