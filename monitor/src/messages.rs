//! Every message text the monitor sends to a person, in one place: the
//! catalogue `monitor/messages.toml` (minijinja templates, Chinese and
//! English), the facts it is filled with, and how they are written (the
//! reading's Chinese name and unit, the value against its threshold, the
//! level, Beijing time, the acknowledgement deadline, the link and the SMS
//! reply code). Chinese by default; English per person (`people.lang`) or
//! for the deployment (`notify.lang`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use anquan_protocol::{DeviceKind, Level};
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::rota::CST_MS;
use crate::warnings::ladder::Purpose;

/// The catalogue source, embedded in the binary.
pub const SOURCE: &str = include_str!("../messages.toml");

/// A language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    /// 中文 (default).
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 tag (`<html lang>`).
    pub fn tag(self) -> &'static str {
        match self {
            Self::Zh => "zh-CN",
            Self::En => "en",
        }
    }

    /// The short code (`?lang=`, the cookie, `people.lang`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Zh => "zh",
            Self::En => "en",
        }
    }

    /// `zh…` or `en…` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s.starts_with("zh") {
            Some(Self::Zh)
        } else if s.starts_with("en") {
            Some(Self::En)
        } else {
            None
        }
    }

    /// `?lang=`, then the cookie, then the first known `Accept-Language`
    /// entry (in the order given; q-values are not weighed), else Chinese.
    pub fn pick(query: Option<&str>, cookie: Option<&str>, accept: Option<&str>) -> Self {
        query
            .and_then(Self::parse)
            .or_else(|| cookie.and_then(Self::parse))
            .or_else(|| {
                accept.and_then(|a| {
                    a.split(',')
                        .filter_map(|part| part.split(';').next())
                        .find_map(Self::parse)
                })
            })
            .unwrap_or(Self::Zh)
    }
}

/// One message in one language.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forms {
    /// IM, e-mail subject, webhook title.
    pub title: String,
    /// IM, e-mail, webhook text.
    pub body: String,
    /// One SMS.
    pub sms: String,
    /// Read out by a voice call.
    pub voice: String,
}

/// One message: its template variables and both languages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The variables of the provider templates (SMS, voice), in order.
    pub params: Vec<String>,
    /// 中文.
    pub zh: Forms,
    /// English.
    pub en: Forms,
}

/// Per-language word lists.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Words {
    /// 中文.
    pub zh: BTreeMap<String, String>,
    /// English.
    pub en: BTreeMap<String, String>,
}

impl Words {
    fn get(&self, lang: Lang, key: &str) -> Option<&str> {
        match lang {
            Lang::Zh => self.zh.get(key),
            Lang::En => self.en.get(key),
        }
        .map(String::as_str)
    }
}

/// The whole catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    /// Rule id → reading name.
    pub readings: Words,
    /// Level → name.
    pub levels: Words,
    /// Disposal outcomes.
    pub outcomes: Words,
    /// Subject kinds of reminders.
    pub subjects: Words,
    /// Warning notices by purpose.
    pub warning: BTreeMap<String, Entry>,
    /// Reminders by rung.
    pub reminder: BTreeMap<String, Entry>,
    /// Notices about notices: `digest` (several waiting notices in one
    /// message, see `notify::digest`).
    pub notice: BTreeMap<String, Entry>,
}

/// Parses a catalogue and compiles every template; the error names the
/// entry.
pub fn parse(src: &str) -> Result<Catalogue, String> {
    let c: Catalogue = toml::from_str(src).map_err(|e| e.to_string())?;
    let env = env();
    for (group, entries) in [
        ("warning", &c.warning),
        ("reminder", &c.reminder),
        ("notice", &c.notice),
    ] {
        for (k, e) in entries {
            for (lang, f) in [("zh", &e.zh), ("en", &e.en)] {
                for (form, t) in [
                    ("title", &f.title),
                    ("body", &f.body),
                    ("sms", &f.sms),
                    ("voice", &f.voice),
                ] {
                    if t.trim().is_empty() {
                        return Err(format!("{group}.{k}.{lang}.{form}: empty"));
                    }
                    env.template_from_str(t)
                        .map_err(|e| format!("{group}.{k}.{lang}.{form}: {e}"))?;
                }
            }
        }
    }
    Ok(c)
}

fn env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env
}

static CATALOGUE: LazyLock<Catalogue> = LazyLock::new(|| {
    parse(SOURCE).unwrap_or_else(|e| {
        // A unit test parses the embedded file: this does not happen.
        tracing::error!("messages.toml: {e}");
        Catalogue {
            readings: Words::default(),
            levels: Words::default(),
            outcomes: Words::default(),
            subjects: Words::default(),
            warning: BTreeMap::new(),
            reminder: BTreeMap::new(),
            notice: BTreeMap::new(),
        }
    })
});

/// The catalogue.
pub fn catalogue() -> &'static Catalogue {
    &CATALOGUE
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq)]
pub struct Text {
    /// IM, e-mail subject, webhook title.
    pub title: String,
    /// IM, e-mail, webhook text.
    pub body: String,
    /// The SMS.
    pub sms: String,
    /// The voice script.
    pub voice: String,
    /// The provider template variables: `{name: value}` in `params` order.
    pub params: Value,
}

/// A number as people write it: at most three decimals, no trailing
/// zeros (`55`, `0.07`, `12.5`). Values come from `f32` on the wire, so
/// more digits would only show float noise.
pub fn number(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.into() }
}

/// The unit of a rule's reading (`%LEL`, `MPa/min`), from the built-in
/// rule set of the device kind; empty for rules without one (offline,
/// fault, combined) or unknown rules.
pub fn unit(kind: &str, rule: &str) -> String {
    use anquan_edge_rules::RuleKind;
    let Some(k) = DeviceKind::parse(kind) else {
        return String::new();
    };
    match anquan_edge_rules::defaults::for_kind(k)
        .get(rule)
        .map(|r| &r.kind)
    {
        Some(RuleKind::Threshold { metric, .. }) => metric.unit().to_string(),
        Some(RuleKind::RateOfChange { metric, .. }) => format!("{}/min", metric.unit()),
        // The engine reports an all-of rule's first condition.
        Some(RuleKind::AllOf { conditions, .. }) => conditions
            .first()
            .map(|c| c.metric.unit().to_string())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// The reading's name in `lang` (`gas.lel` → 可燃气体浓度); the rule id
/// when the catalogue has none (a site-specific rule).
pub fn reading(lang: Lang, rule: &str) -> String {
    CATALOGUE
        .readings
        .get(lang, rule)
        .map_or_else(|| rule.to_string(), str::to_string)
}

/// The level's name in `lang` (红色, Red).
pub fn level(lang: Lang, l: Level) -> String {
    CATALOGUE
        .levels
        .get(lang, l.as_str())
        .map_or_else(|| l.as_str().to_string(), str::to_string)
}

/// Beijing time: `11月10日 08:05` / `10 Nov 08:05`.
pub fn time(lang: Lang, ms: i64) -> String {
    let Some(d) = chrono::DateTime::from_timestamp_millis(ms + CST_MS) else {
        return String::new();
    };
    match lang {
        Lang::Zh => d.format("%-m月%-d日 %H:%M").to_string(),
        Lang::En => d.format("%-d %b %H:%M").to_string(),
    }
}

/// A deadline: the time of day when it falls on the day of `from`, else
/// with the date.
pub fn deadline(lang: Lang, due_ms: i64, from_ms: i64) -> String {
    let day = |ms: i64| (ms + CST_MS).div_euclid(86_400_000);
    if day(due_ms) == day(from_ms) {
        chrono::DateTime::from_timestamp_millis(due_ms + CST_MS)
            .map(|d| d.format("%H:%M").to_string())
            .unwrap_or_default()
    } else {
        time(lang, due_ms)
    }
}

/// What a warning notice says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    /// The level now.
    pub level: Option<Level>,
    /// The venue's name, or the site id.
    pub venue: String,
    /// The device's name, or its id.
    pub device: String,
    /// Where the device is.
    pub location: String,
    /// The device's registration (a crane's 使用登记编号; may be empty).
    pub registration: String,
    /// The device kind (`gas`, …).
    pub kind: String,
    /// The rule (`gas.lel`).
    pub rule: String,
    /// The latest value.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// Raised (Unix ms).
    pub raised_ms: i64,
    /// The acknowledgement deadline (Unix ms).
    pub due_ms: Option<i64>,
    /// When the message is written (Unix ms).
    pub now_ms: i64,
    /// The acknowledgement link.
    pub link: String,
    /// The SMS reply code.
    pub code: String,
    /// Who acknowledged (closure).
    pub by: String,
    /// A false alarm (disposal closure).
    pub false_alarm: bool,
    /// Still waits for an acknowledgement.
    pub needs_ack: bool,
    /// The ladder step.
    pub step: i64,
}

/// The catalogue's templates, compiled once (each is named by its own
/// text): messages are rendered for every notice an alarm storm makes.
static COMPILED: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = env();
    for e in CATALOGUE
        .warning
        .values()
        .chain(CATALOGUE.reminder.values())
        .chain(CATALOGUE.notice.values())
    {
        for f in [&e.zh, &e.en] {
            for t in [&f.title, &f.body, &f.sms, &f.voice] {
                if let Err(err) = env.add_template(t.as_str(), t.as_str()) {
                    // A unit test renders every entry: this does not happen.
                    tracing::error!(error = %err, "messages.toml: a template does not compile");
                }
            }
        }
    }
    env
});

fn render_entry(e: &'static Entry, lang: Lang, ctx: minijinja::Value, vars: &Value) -> Text {
    let f = match lang {
        Lang::Zh => &e.zh,
        Lang::En => &e.en,
    };
    let r = |t: &'static str| {
        COMPILED
            .get_template(t)
            .and_then(|tpl| tpl.render(ctx.clone()))
            .unwrap_or_else(|err| {
                tracing::error!(error = %err, "messages: a template failed; sending it raw");
                t.to_string()
            })
    };
    let tidy = |s: String| {
        s.lines()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let params: serde_json::Map<String, Value> = e
        .params
        .iter()
        .map(|p| (p.clone(), vars.get(p).cloned().unwrap_or(Value::Null)))
        .collect();
    Text {
        title: r(&f.title),
        body: tidy(r(&f.body)),
        sms: r(&f.sms),
        voice: r(&f.voice),
        params: Value::Object(params),
    }
}

/// A warning notice for `purpose` in `lang`.
pub fn warning(purpose: Purpose, lang: Lang, f: &Facts) -> Text {
    let unit = unit(&f.kind, &f.rule);
    let vars = json!({
        "level": f.level.map(|l| level(lang, l)).unwrap_or_default(),
        "venue": f.venue,
        "device": f.device,
        "location": f.location,
        "registration": f.registration,
        "reading": reading(lang, &f.rule),
        "unit": unit,
        "value": number(f.value),
        "threshold": number(f.threshold),
        "time": time(lang, f.raised_ms),
        "deadline": f.due_ms.map(|d| deadline(lang, d, f.now_ms)).unwrap_or_default(),
        "link": f.link,
        "code": f.code,
        "by": f.by,
        "false_alarm": f.false_alarm,
        "needs_ack": f.needs_ack,
        "outcome": CATALOGUE
            .outcomes
            .get(lang, if f.false_alarm { "false_alarm" } else { "real" })
            .unwrap_or_default(),
        "step": f.step,
    });
    let Some(e) = CATALOGUE.warning.get(purpose.as_str()) else {
        return fallback(purpose.as_str(), &vars);
    };
    render_entry(e, lang, minijinja::Value::from_serialize(&vars), &vars)
}

/// A reminder of a task or hazard (`rung`: before, due, overdue, node,
/// listing).
pub fn reminder(rung: &str, lang: Lang, subject: &str, id: &str, title: &str, due_ms: i64) -> Text {
    let vars = json!({
        "what": CATALOGUE.subjects.get(lang, subject).unwrap_or(subject),
        "title": title,
        "due": time(lang, due_ms),
        "id": id,
    });
    let Some(e) = CATALOGUE.reminder.get(rung) else {
        return fallback(rung, &vars);
    };
    render_entry(e, lang, minijinja::Value::from_serialize(&vars), &vars)
}

/// Several waiting notices to one person on one channel as one message
/// (`notify::digest`): `titles` are theirs, oldest first.
pub fn digest(lang: Lang, titles: &[String]) -> Text {
    let list: Vec<String> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{}. {t}", i + 1))
        .collect();
    // The first title as a provider template variable: Alibaba Cloud caps
    // a variable at 35 characters.
    let first: String = titles
        .first()
        .map(|t| t.chars().take(30).collect())
        .unwrap_or_default();
    let vars = json!({
        "count": titles.len(),
        "first": first,
        "list": list.join("\n"),
    });
    let Some(e) = CATALOGUE.notice.get("digest") else {
        return fallback("digest", &vars);
    };
    render_entry(e, lang, minijinja::Value::from_serialize(&vars), &vars)
}

fn fallback(kind: &str, vars: &Value) -> Text {
    let s = format!("{kind}: {vars}");
    Text {
        title: kind.into(),
        body: s.clone(),
        sms: s.clone(),
        voice: s,
        params: vars.clone(),
    }
}

/// The SMS text of a message with its variables as the provider writes
/// them in a template (`${venue}` for Alibaba Cloud, `{1}` for Tencent
/// Cloud): what to register with the provider.
pub fn sms_template(group: &str, kind: &str, lang: Lang, numbered: bool) -> Option<String> {
    let entries = match group {
        "warning" => &CATALOGUE.warning,
        "reminder" => &CATALOGUE.reminder,
        "notice" => &CATALOGUE.notice,
        _ => return None,
    };
    let e = entries.get(kind)?;
    let mut vars = serde_json::Map::new();
    for (i, p) in e.params.iter().enumerate() {
        let v = if numbered {
            format!("{{{}}}", i + 1)
        } else {
            format!("${{{p}}}")
        };
        vars.insert(p.clone(), Value::String(v));
    }
    let f = match lang {
        Lang::Zh => &e.zh,
        Lang::En => &e.en,
    };
    env()
        .render_str(
            &f.sms,
            context! { ..minijinja::Value::from_serialize(&vars) },
        )
        .ok()
}

/// Every message that may go by SMS as `(group, kind)`: the warning
/// messages, the task reminders, then the digest.
pub fn sms_kinds() -> Vec<(&'static str, &'static str)> {
    CATALOGUE
        .warning
        .keys()
        .map(|k| ("warning", k.as_str()))
        .chain(CATALOGUE.reminder.keys().map(|k| ("reminder", k.as_str())))
        .chain(CATALOGUE.notice.keys().map(|k| ("notice", k.as_str())))
        .collect()
}

/// The texts to register with an SMS provider, one block per message:
/// the `[notify.sms.templates]` key, the variables in order, the text
/// (`numbered`: Tencent Cloud's `{1}`, else Alibaba Cloud's `${name}`).
pub fn sms_registration(lang: Lang, numbered: bool) -> String {
    let mut out = String::new();
    for (group, kind) in sms_kinds() {
        let Some(text) = sms_template(group, kind, lang, numbered) else {
            continue;
        };
        let params = param_order(kind).map(|p| p.join(", ")).unwrap_or_default();
        out.push_str(&format!(
            "# {kind} ({group}); variables: {params}\n{kind} = \"{text}\"\n\n"
        ));
    }
    out
}

/// The variables of a message's provider templates, in template order
/// (`call`, `inform`, …, and the reminder rungs `before` … `listing`).
pub fn param_order(template: &str) -> Option<&'static [String]> {
    CATALOGUE
        .warning
        .get(template)
        .or_else(|| CATALOGUE.reminder.get(template))
        .or_else(|| CATALOGUE.notice.get(template))
        .map(|e| e.params.as_slice())
}

/// SMS segments a text takes: one of 70 characters (Chinese, UCS-2), or of
/// 67 each when longer (the concatenation header takes 3).
pub fn sms_segments(s: &str) -> usize {
    let n = s.chars().count();
    if n <= 70 { 1 } else { n.div_ceil(67) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn registration_lists_every_sms_message() {
        let a = sms_registration(Lang::Zh, false);
        let t = sms_registration(Lang::Zh, true);
        for (_, kind) in sms_kinds() {
            assert!(a.contains(&format!("\n{kind} = ")), "{kind}: {a}");
        }
        assert!(a.contains("${venue}") && !a.contains("{1}"), "{a}");
        assert!(t.contains("{1}") && !t.contains("${"), "{t}");
    }

    fn gas() -> Facts {
        Facts {
            level: Some(Level::Red),
            venue: "南湖景区".into(),
            device: "燃气探测器1".into(),
            location: "游客中心厨房".into(),
            registration: String::new(),
            kind: "gas".into(),
            rule: "gas.lel".into(),
            value: f64::from(55.0f32),
            threshold: f64::from(50.0f32),
            raised_ms: 1_794_268_800_000, // 2026-11-10 08:00 CST
            due_ms: Some(1_794_268_800_000 + 300_000),
            now_ms: 1_794_268_800_000,
            link: "https://aq.example.cn/a/k7d2m9q4x1c8.hv3t8a2kq0mz5e1r".into(),
            code: "4821".into(),
            ..Facts::default()
        }
    }

    #[test]
    fn the_catalogue_is_complete() {
        let c = parse(SOURCE).unwrap();
        for p in Purpose::ALL {
            let e = c
                .warning
                .get(p.as_str())
                .unwrap_or_else(|| panic!("{}", p.as_str()));
            assert!(!e.params.is_empty());
        }
        for rung in ["before", "due", "overdue", "node", "listing"] {
            assert!(c.reminder.contains_key(rung), "{rung}");
        }
        for l in ["red", "orange", "yellow", "blue"] {
            assert!(c.levels.zh.contains_key(l) && c.levels.en.contains_key(l));
        }
        // Every rule of the built-in rule sets has a reading name in both.
        for k in DeviceKind::ALL {
            for r in anquan_edge_rules::defaults::for_kind(k).rules() {
                let id = r.id.as_str();
                assert!(c.readings.zh.contains_key(id), "zh {id}");
                assert!(c.readings.en.contains_key(id), "en {id}");
            }
        }
        assert!(parse("readings = 1").is_err());
        assert!(c.notice.contains_key("digest"));
    }

    #[test]
    fn a_cranes_registration_is_named_in_the_full_text_not_the_sms() {
        let mut f = gas();
        f.registration = "苏A-T00123".into();
        let t = warning(Purpose::Call, Lang::Zh, &f);
        assert!(t.body.contains("（使用登记编号 苏A-T00123）"), "{}", t.body);
        assert!(!t.sms.contains("苏A-T00123"), "the SMS keeps its length");
        let t = warning(Purpose::Inform, Lang::En, &f);
        assert!(t.body.contains("(registration 苏A-T00123)"), "{}", t.body);
        let t = warning(Purpose::Call, Lang::Zh, &gas());
        assert!(!t.body.contains("使用登记编号"), "none: not mentioned");
    }

    #[test]
    fn a_digest_lists_every_title_and_its_sms_fits_one_segment() {
        let titles: Vec<String> = (1..=3)
            .map(|i| format!("【已解除】游客中心 可燃气体浓度 {i}"))
            .collect();
        let t = digest(Lang::Zh, &titles);
        assert_eq!(t.title, "【汇总】3条通知");
        for (i, title) in titles.iter().enumerate() {
            assert!(
                t.body.contains(&format!("{}. {title}", i + 1)),
                "{}",
                t.body
            );
        }
        assert_eq!(t.params["count"], 3);
        assert_eq!(t.params["first"], titles[0].as_str());
        assert!(
            t.params.get("list").is_none(),
            "only the registered variables"
        );
        assert_eq!(sms_segments(&t.sms), 1, "{}", t.sms);
        let long = vec!["长".repeat(80)];
        let t = digest(Lang::En, &long);
        assert_eq!(t.params["first"].as_str().unwrap().chars().count(), 30);
        assert!(t.title.starts_with("[Digest] 1"));
    }

    #[test]
    fn a_red_gas_call_in_chinese_says_what_where_how_much_and_by_when() {
        let t = warning(Purpose::Call, Lang::Zh, &gas());
        for part in [
            "红色预警",
            "南湖景区",
            "游客中心厨房",
            "燃气探测器1",
            "可燃气体浓度",
            "55%LEL",
            "阈值 50%LEL",
            "11月10日 08:00",
            "08:05",
            "4821",
            "https://aq.example.cn/a/",
        ] {
            assert!(t.body.contains(part), "{part} missing in {}", t.body);
        }
        assert!(t.title.contains("【红色预警】南湖景区"));
        assert!(!t.body.contains("gas.lel") && !t.body.contains("POST"));
        assert!(t.sms.contains("55%LEL") && t.sms.contains("4821"));
        assert_eq!(
            sms_segments(&t.sms),
            2,
            "a call carries the link: two segments ({})",
            t.sms
        );
        assert!(t.voice.contains("按1"));
        assert_eq!(t.params["value"], "55");
        assert_eq!(t.params["reading"], "可燃气体浓度");
        let en = warning(Purpose::Call, Lang::En, &gas());
        assert!(
            en.body.contains("Combustible gas 55%LEL, threshold 50%LEL"),
            "{}",
            en.body
        );
        assert!(en.title.starts_with("[Red alarm]"));
    }

    #[test]
    fn closure_and_inform_sms_fit_one_segment() {
        let mut f = gas();
        f.by = "王安全".into();
        for p in [
            Purpose::Inform,
            Purpose::Acked,
            Purpose::Cleared,
            Purpose::Disposal,
            Purpose::Resolved,
        ] {
            let t = warning(p, Lang::Zh, &f);
            assert_eq!(
                sms_segments(&t.sms),
                1,
                "{}: {} ({} chars)",
                p.as_str(),
                t.sms,
                t.sms.chars().count()
            );
        }
        let t = warning(Purpose::Acked, Lang::Zh, &f);
        assert!(t.body.contains("王安全 已确认"), "{}", t.body);
    }

    #[test]
    fn units_and_numbers() {
        assert_eq!(unit("gas", "gas.lel"), "%LEL");
        assert_eq!(unit("water_pressure", "water.pressure_drop"), "MPa/min");
        assert_eq!(unit("gas", "gas.offline"), "");
        assert_eq!(unit("gas", "site.custom"), "");
        assert_eq!(unit("smoke", "x"), "");
        assert_eq!(number(f64::from(0.07f32)), "0.07");
        assert_eq!(number(55.0), "55");
        assert_eq!(number(-0.0001), "0");
        assert_eq!(number(f64::NAN), "-");
        assert_eq!(reading(Lang::Zh, "custom.rule"), "custom.rule");
    }

    #[test]
    fn provider_templates_name_the_variables() {
        let a = sms_template("warning", "acked", Lang::Zh, false).unwrap();
        assert_eq!(a, "已确认:${venue}${reading}预警由${by}接手处置");
        let t = sms_template("warning", "acked", Lang::Zh, true).unwrap();
        assert_eq!(t, "已确认:{1}{2}预警由{3}接手处置");
    }

    #[test]
    fn language_choice() {
        assert_eq!(Lang::pick(None, None, None), Lang::Zh);
        assert_eq!(Lang::pick(None, None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::pick(None, Some("zh"), Some("en-US")), Lang::Zh);
        assert_eq!(Lang::pick(Some("en"), Some("zh"), None), Lang::En);
        assert_eq!(
            Lang::pick(Some("fr"), None, Some("fr, zh-CN;q=0.8")),
            Lang::Zh
        );
    }
}
