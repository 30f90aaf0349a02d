//! `docs/config-reference.md` is generated from the gateway's and the
//! monitor's config structs, so it cannot drift: every key of
//! `anquan_gateway::config::Config` and `anquan_monitor::Config` (walked
//! from the `Deserialize` structs in `gateway/src` and `monitor/src`, with
//! their serde renames), its type (enums list their values), its default
//! (the effective configuration of a minimal file: for the gateway as
//! `anquan-gateway check` prints it, for the monitor the parsed `Config`
//! serialized back) and its doc comment. This test fails when the
//! committed file differs.
//!
//! Regenerate: `ANQUAN_REGENERATE=1 cargo test -p anquan-e2e --test ops_config_reference`

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use syn::{Attribute, Fields, GenericArgument, Item, PathArguments, Type};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or_else(|| panic!("no parent"))
        .to_path_buf()
}

const MINIMAL: &str = "[gateway]\nid = \"gw-01\"\ndata_dir = \"/var/lib/anquan-gateway\"\n";

/// MINIMAL plus every optional table with only its required keys: the
/// defaults of the keys in tables that are absent by default.
const SAMPLE: &str = r#"
[gateway]
id = "gw-01"
data_dir = "/var/lib/anquan-gateway"

[[validate.devices]]
id = "gas-0001"
site = "s1"
kind = "gas"

[sink.influx]
url = "http://127.0.0.1:8428"
org = "anquan"
bucket = "site"
token = "example-token"

[forward.http]
url = "http://127.0.0.1:8088"
token = "example-token"

[forward.mqtt]

[modbus.maps.transmitter]
registers = [{ reading = "pressure_mpa", address = 0 }]

[[modbus.links]]
name = "pump-room"
transport = "tcp"
address = "192.0.2.10:502"

[[modbus.links.devices]]
id = "wp-0001"
site = "s1"
kind = "water_pressure"
unit = 1
registers = [{ reading = "pressure_mpa", address = 0 }]

[modbus.dtu]
listen = "0.0.0.0:9000"

[gb26875]
listen = "0.0.0.0:9026"

[[gb26875.devices]]
address = 100001
id = "fp-0001"
site = "s1"
"#;

/// The smallest valid monitor file: the keys without a usable default.
const MONITOR_MINIMAL: &str = r#"
[auth]
intake_tokens = ["example-gateway-token"]
api_tokens = ["example-operator-token"]

[notify.webhook]
secret = "example-webhook-secret"
"#;

/// MONITOR_MINIMAL plus the optional table and one entry of each array of
/// tables, with only their required keys.
const MONITOR_SAMPLE: &str = r#"
[auth]
intake_tokens = ["example-gateway-token"]
api_tokens = ["example-operator-token"]

[notify.webhook]
secret = "example-webhook-secret"

[notify.smtp]
host = "smtp.example.invalid"
port = 25
from = "monitor@example.invalid"

[notify.sms]
provider = "aliyun"
access_key_id = "LTAI-example"
access_key_secret = "example-sms-secret"
sign_name = "安全监管"

[notify.voice]
provider = "aliyun"
access_key_id = "LTAI-example"
access_key_secret = "example-vms-secret"

[[notify.robots]]
name = "town-duty"
kind = "wecom"
url = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=example"

[[policy.overrides]]
venues = ["s1"]
level = "orange"

[[reports.mail]]
region = "city"
to = ["reports@example.invalid"]

[[task_templates]]
id = "daily-patrol"
kind = "patrol"
title = "日巡查"
every = "day"
region_id = "city"
assignee_role = "safety_officer"
due_h = 20

[[seed.regions]]
id = "city"
name = "City"
tier = "city"

[[seed.venues]]
id = "s1"
name = "Scenic area"
sector = "scenic_area"
address = "1 Lake Road"
region_id = "city"

[[seed.devices]]
id = "gas-0001"
venue_id = "s1"
kind = "gas"

[[seed.people]]
id = "p1"
name = "Safety officer"
role = "safety_officer"
region_id = "city"
email = "p1@example.invalid"

[[seed.duty]]
person_id = "p1"
role = "safety_officer"
region_id = "city"

[[seed.grids]]
id = "g1"
name = "Grid 1"
region_id = "city"

[[seed.venue_people]]
venue_id = "s1"
person_id = "p1"
role = "safety_officer"

[[seed.duty_overrides]]
date = "2026-10-01"
region_id = "city"
role = "safety_officer"
person_id = "p1"

[[seed.holidays]]
date = "2026-10-01"
name = "国庆节"
"#;

#[derive(Debug)]
struct FieldDef {
    key: String,
    ty: Type,
    doc: String,
    has_default: bool,
}

#[derive(Debug)]
enum Def {
    Struct {
        doc: String,
        fields: Vec<FieldDef>,
        container_default: bool,
    },
    Enum {
        values: Vec<String>,
    },
}

fn doc_of(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs {
        if let syn::Meta::NameValue(nv) = &a.meta
            && nv.path.is_ident("doc")
            && let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
        {
            lines.push(s.value().trim().to_string());
        }
    }
    lines.join(" ").trim().to_string()
}

/// (derives Deserialize, serde words: rename, rename_all, default).
fn serde_attrs(attrs: &[Attribute]) -> (bool, Option<String>, Option<String>, bool) {
    let mut derives = false;
    let (mut rename, mut rename_all, mut default) = (None, None, false);
    for a in attrs {
        if a.path().is_ident("derive") {
            let _ = a.parse_nested_meta(|m| {
                if m.path.is_ident("Deserialize") {
                    derives = true;
                }
                Ok(())
            });
        }
        if a.path().is_ident("serde") {
            let _ = a.parse_nested_meta(|m| {
                if m.path.is_ident("rename") {
                    rename = Some(m.value()?.parse::<syn::LitStr>()?.value());
                } else if m.path.is_ident("rename_all") {
                    rename_all = Some(m.value()?.parse::<syn::LitStr>()?.value());
                } else if m.path.is_ident("default") {
                    default = true;
                    if let Ok(v) = m.value() {
                        let _ = v.parse::<syn::LitStr>();
                    }
                } else if let Ok(v) = m.value() {
                    let _ = v.parse::<syn::Expr>();
                }
                Ok(())
            });
        }
    }
    (derives, rename, rename_all, default)
}

fn snake(s: &str) -> String {
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn collect(dir: &Path, defs: &mut BTreeMap<String, Def>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, defs);
            continue;
        }
        if p.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let src = std::fs::read_to_string(&p).unwrap_or_default();
        let file = syn::parse_file(&src).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        collect_items(file.items, defs);
    }
}

/// Records the serde structs and enums among `items`, including those
/// declared inside a macro invocation whose body is items (the monitor's
/// `row! { ... }` declares its typed rows, the seed tables among them, so).
fn collect_items(items: Vec<Item>, defs: &mut BTreeMap<String, Def>) {
    for item in items {
        match item {
            Item::Macro(m) => {
                if let Ok(inner) = syn::parse2::<syn::File>(m.mac.tokens.clone()) {
                    collect_items(inner.items, defs);
                }
            }
            Item::Struct(s) => {
                let (derives, _, _, container_default) = serde_attrs(&s.attrs);
                if !derives {
                    continue;
                }
                let Fields::Named(named) = &s.fields else {
                    continue;
                };
                let fields = named
                    .named
                    .iter()
                    .map(|f| {
                        let (_, rename, _, has_default) = serde_attrs(&f.attrs);
                        let name = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
                        FieldDef {
                            key: rename.unwrap_or(name),
                            ty: f.ty.clone(),
                            doc: doc_of(&f.attrs),
                            has_default,
                        }
                    })
                    .collect();
                defs.insert(
                    s.ident.to_string(),
                    Def::Struct {
                        doc: doc_of(&s.attrs),
                        fields,
                        container_default,
                    },
                );
            }
            Item::Enum(e) => {
                let (derives, _, rename_all, _) = serde_attrs(&e.attrs);
                if !derives {
                    continue;
                }
                let values = e
                    .variants
                    .iter()
                    .map(|v| {
                        let (_, rename, _, _) = serde_attrs(&v.attrs);
                        rename.unwrap_or_else(|| match rename_all.as_deref() {
                            Some("snake_case") => snake(&v.ident.to_string()),
                            Some("lowercase") => v.ident.to_string().to_lowercase(),
                            _ => v.ident.to_string(),
                        })
                    })
                    .collect();
                defs.insert(e.ident.to_string(), Def::Enum { values });
            }
            _ => {}
        }
    }
}

/// The last path segment and its generic type arguments.
fn split(ty: &Type) -> (String, Vec<Type>) {
    match ty {
        Type::Path(p) => {
            let Some(seg) = p.path.segments.last() else {
                return ("?".into(), vec![]);
            };
            let args = match &seg.arguments {
                PathArguments::AngleBracketed(a) => a
                    .args
                    .iter()
                    .filter_map(|g| match g {
                        GenericArgument::Type(t) => Some(t.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
            (seg.ident.to_string(), args)
        }
        Type::Array(a) => {
            let (inner, _) = split(&a.elem);
            (format!("[{inner}; N]"), vec![])
        }
        _ => ("?".into(), vec![]),
    }
}

fn type_name(ty: &Type, defs: &BTreeMap<String, Def>) -> String {
    let (name, args) = split(ty);
    let leaf = |n: &str| -> String {
        match n {
            "String" | "Id" => "string".into(),
            "PathBuf" => "path".into(),
            "Secret" => "secret (`env:NAME`, `file:PATH` or plain)".into(),
            "bool" => "bool".into(),
            "f32" | "f64" => "float".into(),
            "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" => {
                format!("integer ({n})")
            }
            other => match defs.get(other) {
                Some(Def::Enum { values }) => values
                    .iter()
                    .map(|v| format!("`\"{v}\"`"))
                    .collect::<Vec<_>>()
                    .join(" \\| "),
                Some(Def::Struct { .. }) => "table".into(),
                None => other.to_string(),
            },
        }
    };
    match (name.as_str(), args.as_slice()) {
        ("Option", [t]) => type_name(t, defs),
        ("Vec", [t]) => format!("array of {}", type_name(t, defs)),
        ("BTreeMap" | "HashMap", [_, t]) => format!("table of {}", type_name(t, defs)),
        _ => leaf(&name),
    }
}

/// The value at `path`; `#0` is an array's first element, `*` a table's
/// first entry.
fn lookup<'a>(v: &'a toml::Value, path: &[String]) -> Option<&'a toml::Value> {
    path.iter().try_fold(v, |v, k| match k.as_str() {
        "#0" => v.get(0),
        "*" => v.as_table().and_then(|t| t.values().next()),
        k => v.get(k),
    })
}

fn show(v: &toml::Value) -> String {
    let s = match v {
        toml::Value::Table(t) if t.is_empty() => "{}".to_string(),
        toml::Value::Array(a) if a.is_empty() => "[]".to_string(),
        other => other.to_string(),
    };
    format!("`{}`", s.replace('|', "\\|"))
}

struct Walker<'a> {
    defs: &'a BTreeMap<String, Def>,
    defaults: toml::Value,
    sample: toml::Value,
    out: String,
}

impl Walker<'_> {
    /// One table: its scalar keys as rows, then its sub-tables.
    fn table(
        &mut self,
        header: &str,
        array: bool,
        path: &[String],
        struct_name: &str,
        present: bool,
    ) {
        let Some(Def::Struct {
            doc,
            fields,
            container_default,
        }) = self.defs.get(struct_name)
        else {
            return;
        };
        if array {
            let _ = writeln!(self.out, "## `[[{header}]]`\n");
        } else {
            let _ = writeln!(self.out, "## `[{header}]`\n");
        }
        if !doc.is_empty() {
            let _ = writeln!(self.out, "{doc}\n");
        }
        let _ = writeln!(self.out, "| key | type | default | description |");
        let _ = writeln!(self.out, "|---|---|---|---|");
        let mut subs = Vec::new();
        for f in fields {
            let (outer, args) = split(&f.ty);
            let optional = outer == "Option";
            let inner = if optional {
                args.first().cloned().unwrap_or(f.ty.clone())
            } else {
                f.ty.clone()
            };
            let (iname, iargs) = split(&inner);
            let mut key_path = path.to_vec();
            key_path.push(f.key.clone());
            let is_struct = |n: &str| matches!(self.defs.get(n), Some(Def::Struct { .. }));
            let sub = match (iname.as_str(), iargs.as_slice()) {
                (n, _) if is_struct(n) => Some((format!("{header}.{}", f.key), n.to_string(), "")),
                ("Vec", [t]) if is_struct(&split(t).0) => {
                    Some((format!("{header}.{}", f.key), split(t).0, "[]"))
                }
                ("BTreeMap" | "HashMap", [_, t]) if is_struct(&split(t).0) => {
                    Some((format!("{header}.{}.<name>", f.key), split(t).0, "map"))
                }
                _ => None,
            };
            let required = !f.has_default && !container_default && !optional;
            // Tables absent by default take their values from SAMPLE,
            // which sets only their required keys.
            let source = if present {
                &self.defaults
            } else {
                &self.sample
            };
            let default = match (lookup(source, &key_path), sub.is_some()) {
                (_, true) => String::new(),
                (Some(v), _) if required => format!("**required** (e.g. {})", show(v)),
                (Some(v), _) => show(v),
                (None, _) if required => "**required**".to_string(),
                (None, _) if optional => "unset".to_string(),
                (None, _) => "—".to_string(),
            };
            let ty = type_name(&f.ty, self.defs);
            let ty = if optional {
                format!("{ty} (optional)")
            } else {
                ty
            };
            let doc = f.doc.replace('|', "\\|");
            match &sub {
                Some((h, _, "[]")) => {
                    let _ = writeln!(
                        self.out,
                        "| `{}` | array of tables, see `[[{h}]]` | {} | {doc} |",
                        f.key,
                        if required { "**required**" } else { "`[]`" }
                    );
                }
                Some((h, _, _)) => {
                    let _ = writeln!(
                        self.out,
                        "| `{}` | table, see `[{h}]` | {} | {doc} |",
                        f.key,
                        if optional { "unset" } else { "see below" }
                    );
                }
                None => {
                    let _ = writeln!(self.out, "| `{}` | {ty} | {default} | {doc} |", f.key);
                }
            }
            if let Some(s) = sub {
                match s.2 {
                    "[]" => key_path.push("#0".into()),
                    "map" => key_path.push("*".into()),
                    _ => {}
                }
                subs.push((s, key_path, optional));
            }
        }
        let _ = writeln!(self.out);
        for ((h, name, kind), key_path, optional) in subs {
            let sub_present = present && !optional && kind.is_empty();
            self.table(&h, kind == "[]", &key_path, &name, sub_present);
        }
    }
}

/// The sections of one crate's `Config`: one table per field.
fn sections(src: &str, defaults: toml::Value, sample: toml::Value, out: &mut String) {
    let mut defs = BTreeMap::new();
    collect(&repo().join(src), &mut defs);
    let mut w = Walker {
        defs: &defs,
        defaults,
        sample,
        out: String::new(),
    };
    if let Some(Def::Struct { fields, .. }) = defs.get("Config") {
        for f in fields {
            let (outer, args) = split(&f.ty);
            if outer == "Vec" {
                // A top-level array of tables (the monitor's `[[users]]`):
                // its keys as the sample's first entry has them.
                let name = args.first().map(|t| split(t).0).unwrap_or_default();
                w.table(&f.key, true, &[f.key.clone(), "#0".into()], &name, false);
                continue;
            }
            let (name, optional) = if outer == "Option" {
                (args.first().map(|t| split(t).0).unwrap_or_default(), true)
            } else {
                (outer, false)
            };
            w.table(
                &f.key,
                false,
                std::slice::from_ref(&f.key),
                &name,
                !optional,
            );
        }
    }
    out.push_str(&w.out);
}

fn monitor_effective(text: &str) -> toml::Value {
    let cfg = anquan_monitor::Config::parse(text).unwrap_or_else(|e| panic!("monitor config: {e}"));
    toml::Value::try_from(&cfg).unwrap_or_else(|e| panic!("monitor effective config: {e}"))
}

fn generate() -> String {
    let cfg = anquan_gateway::config::Config::parse(MINIMAL)
        .unwrap_or_else(|e| panic!("minimal config: {e}"));
    let defaults: toml::Value = toml::from_str(&cfg.to_effective_toml())
        .unwrap_or_else(|e| panic!("effective config: {e}"));
    let cfg = anquan_gateway::config::Config::parse(SAMPLE)
        .unwrap_or_else(|e| panic!("sample config: {e}"));
    let sample: toml::Value = toml::from_str(&cfg.to_effective_toml())
        .unwrap_or_else(|e| panic!("effective config: {e}"));
    let mut out = String::from(
        "# anquan-gateway configuration reference\n\n\
         <!-- Generated by tests/tests/ops_config_reference.rs from the config structs in\n\
         gateway/src and monitor/src; do not edit. Regenerate:\n\
         ANQUAN_REGENERATE=1 cargo test -p anquan-e2e --test ops_config_reference -->\n\n\
         Every key of the gateway's TOML file (`anquan-gateway run|check --config FILE`),\n\
         with its type, its default (what `anquan-gateway check` prints for a file\n\
         that sets only `[gateway] id` and `data_dir`) and its description. Unknown keys\n\
         are errors. `gateway/gateway.example.toml` is a commented example. For\n\
         optional tables and arrays of tables, the defaults are those that apply once\n\
         the table is present; `unset` means the key is optional and has no value.\n\n\
         The monitor's file follows [below](#anquan-monitor-configuration-reference).\n\n",
    );
    sections("gateway/src", defaults, sample, &mut out);
    out.push_str(
        "# anquan-monitor configuration reference\n\n\
         Every key of the monitor's TOML file (`anquan-monitor serve|check --config FILE`),\n\
         with its type, its default (the parsed configuration of a file that sets only\n\
         `[auth]` tokens and `[notify.webhook] secret`) and its description. Unknown keys\n\
         are errors; errors name the key. `monitor/monitor.example.toml` is a commented\n\
         example. Defaults of optional tables and arrays of tables are those that apply\n\
         once the table is present.\n\n",
    );
    sections(
        "monitor/src",
        monitor_effective(MONITOR_MINIMAL),
        monitor_effective(MONITOR_SAMPLE),
        &mut out,
    );
    out
}

#[test]
fn config_reference_is_generated_from_the_structs() {
    let text = generate();
    for key in [
        "`[gateway]`",
        "`[mqtt]`",
        "`[sink.influx]`",
        "`[forward.http]`",
        "`[[modbus.links]]`",
        "`[[modbus.links.devices]]`",
        "`[buffer]`",
        "| `points_max_bytes` |",
        "# anquan-monitor configuration reference",
        "`[sla]`",
        "| `red_min` |",
        "`[notify.smtp]`",
        "`[[seed.venues]]`",
        "`[metrics]`",
        "`[[notify.robots]]`",
        "`[policy.red]`",
        "`[[policy.overrides]]`",
        "`[ack]`",
        "`[[seed.venue_people]]`",
        "`[[task_templates]]`",
    ] {
        assert!(text.contains(key), "{key} missing from the reference");
    }
    let path = repo().join("docs/config-reference.md");
    if std::env::var_os("ANQUAN_REGENERATE").is_some() {
        std::fs::create_dir_all(repo().join("docs")).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&path, &text).unwrap_or_else(|e| panic!("{e}"));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != text {
        let first = committed
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(text.lines().count()));
        panic!(
            "docs/config-reference.md is stale (first difference at line {}): run\n  \
             ANQUAN_REGENERATE=1 cargo test -p anquan-e2e --test ops_config_reference\n\
             generated line: {:?}",
            first + 1,
            text.lines().nth(first)
        );
    }
}
