//! The gateway's configuration file (TOML): one struct per section, each
//! defined next to the code it configures; this module only assembles them,
//! loads the file and validates every value, naming the key of the first
//! mistake (`sink.influx.url: ...`).
//!
//! `gateway.example.toml` documents every key.

use std::path::{Path, PathBuf};

use anquan_protocol::Id;
use serde::{Deserialize, Serialize};

pub use crate::error::ConfigError;
use crate::secret::Secret;
use crate::{
    api, broker, forward, gb26875, ingest, lab, logging, modbus, rules, sink, store, validate,
};

/// `[gateway]`: who this gateway is and where it keeps its state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewaySection {
    /// The gateway id (`[A-Za-z0-9_-]{1,64}`), the first part of every
    /// alarm event id. Never change it on a running site: event ids would
    /// change with it.
    pub id: Id,
    /// Directory of the durable buffer (`buffer.redb`) and the local sink.
    pub data_dir: PathBuf,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Identity and state directory.
    pub gateway: GatewaySection,
    /// Logging.
    #[serde(default)]
    pub log: logging::LogConfig,
    /// The MQTT connection that ingests device frames.
    #[serde(default)]
    pub mqtt: ingest::MqttConfig,
    /// The embedded broker (all-in-one mode).
    #[serde(default)]
    pub broker: broker::BrokerConfig,
    /// Validation and the device registry.
    #[serde(default)]
    pub validate: validate::ValidateConfig,
    /// The site rules file and offline checks.
    #[serde(default)]
    pub rules: rules::RulesConfig,
    /// The durable disk buffer.
    #[serde(default)]
    pub buffer: store::BufferConfig,
    /// Where time series go.
    #[serde(default)]
    pub sink: sink::SinkConfig,
    /// Where alarms go.
    #[serde(default)]
    pub forward: forward::ForwardConfig,
    /// `/healthz` and `/metrics`.
    #[serde(default)]
    pub api: api::ApiConfig,
    /// Modbus devices the gateway polls.
    #[serde(default)]
    pub modbus: modbus::ModbusConfig,
    /// Fire-alarm transmission devices (GB/T 26875.3) that dial the
    /// gateway; off without the table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gb26875: Option<gb26875::Gb26875Config>,
    /// Test-bench switches (a driven clock); off by default, never on a site.
    #[serde(default)]
    pub lab: lab::LabConfig,
}

impl Config {
    /// Parses and validates a configuration text. Relative paths stay
    /// relative (to the working directory); [`Config::load`] resolves them
    /// against the file's directory.
    pub fn parse(src: &str) -> Result<Self, ConfigError> {
        Self::parse_in(src, None)
    }

    /// Parses with relative paths taken relative to `dir`, reads the
    /// secrets, validates.
    fn parse_in(src: &str, dir: Option<&Path>) -> Result<Self, ConfigError> {
        let de = toml::Deserializer::parse(src).map_err(|e| syntax(src, &e))?;
        let cfg: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let inner = e.into_inner();
            let line = inner
                .span()
                .map(|s| format!(" (line {})", line_of(src, s.start)));
            ConfigError::new(
                if key == "." { "(root)".into() } else { key },
                format!("{}{}", inner.message().trim(), line.unwrap_or_default()),
            )
        })?;
        let mut cfg = cfg;
        if let Some(dir) = dir {
            cfg.resolve_paths(dir);
        }
        for (key, secret) in cfg.secrets_mut() {
            secret.resolve(key)?;
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a configuration file; relative paths in
    /// it are taken relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let src = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new("(file)", format!("cannot read {}: {e}", path.display()))
        })?;
        Self::parse_in(&src, path.parent())
    }

    /// Every secret with its key.
    fn secrets_mut(&mut self) -> Vec<(&'static str, &mut Secret)> {
        let mut v = Vec::new();
        if let Some(p) = self.mqtt.password.as_mut() {
            v.push(("mqtt.password", p));
        }
        if let Some(i) = self.sink.influx.as_mut() {
            v.push(("sink.influx.token", &mut i.token));
        }
        if let Some(h) = self.forward.http.as_mut() {
            v.push(("forward.http.token", &mut h.token));
        }
        v
    }

    /// What `check` and the start-up log warn about: secrets written in the
    /// config file, secret files other users can read, lab mode.
    pub fn warnings(&self) -> Vec<String> {
        let mut shown = self.clone();
        let mut w: Vec<String> = shown
            .secrets_mut()
            .into_iter()
            .filter_map(|(key, s)| s.warning(key))
            .collect();
        if self.lab.driven() {
            w.push(format!(
                "lab.clock: \"driven\": LAB MODE, the rules' clock moves only on ticks published on {}; never on a site",
                crate::lab::TICK_TOPIC
            ));
        }
        w
    }

    /// Makes relative paths relative to `dir`.
    pub fn resolve_paths(&mut self, dir: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        };
        fix(&mut self.gateway.data_dir);
        if let Some(f) = self.rules.file.as_mut() {
            fix(f);
        }
        if let Some(tls) = self.mqtt.tls.as_mut() {
            tls.resolve_paths(dir);
        }
        for (_, secret) in self.secrets_mut() {
            secret.resolve_path(dir);
        }
        // The local sink file is relative to data_dir (see sink::Writer).
    }

    /// Checks every value and cross-section rule.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.gateway.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::new("gateway.data_dir", "must not be empty"));
        }
        self.log.validate()?;
        self.mqtt.validate()?;
        self.broker.validate()?;
        if self.broker.enabled && self.mqtt.tls.is_some() {
            return Err(ConfigError::new(
                "mqtt.tls",
                "the embedded broker listens on plain TCP on loopback; remove [mqtt.tls] or disable [broker]",
            ));
        }
        self.validate.validate()?;
        self.rules.validate()?;
        self.buffer.validate()?;
        self.sink.validate()?;
        self.forward.validate()?;
        self.api.validate()?;
        self.modbus.validate()?;
        if let Some(g) = &self.gb26875 {
            g.validate()?;
        }
        let sourced: Vec<_> = self.sourced_devices().collect();
        for (i, (key, d)) in sourced.iter().enumerate() {
            if sourced.iter().take(i).any(|(_, e)| e.id == d.id) {
                return Err(ConfigError::new(
                    key.clone(),
                    format!(
                        "`{}` is listed twice among the Modbus and GB/T 26875 devices",
                        d.id
                    ),
                ));
            }
            if let Some(v) = self.validate.devices.iter().find(|v| v.id == d.id)
                && (v.site != d.site || v.kind != d.kind)
            {
                return Err(ConfigError::new(
                    key.clone(),
                    format!(
                        "`{}` is also in [[validate.devices]] with another site or kind (here: {})",
                        d.id, d.kind
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The devices the gateway's own sources speak for (Modbus devices,
    /// GB/T 26875.3 transmission devices, kind `fire_panel`), with the
    /// config key of each id: declared devices, as if listed in
    /// `[[validate.devices]]`.
    pub fn sourced_devices(&self) -> impl Iterator<Item = (String, validate::DeviceDecl)> + '_ {
        let polled = self.modbus.links.iter().enumerate().flat_map(|(li, l)| {
            l.devices.iter().enumerate().map(move |(di, d)| {
                (
                    format!("modbus.links[{li}].devices[{di}].id"),
                    validate::DeviceDecl {
                        id: d.id.clone(),
                        site: d.site.clone(),
                        kind: d.kind,
                    },
                )
            })
        });
        let fire_panels = self
            .gb26875
            .iter()
            .flat_map(|g| g.devices.iter().enumerate())
            .map(|(i, d)| {
                (
                    format!("gb26875.devices[{i}].id"),
                    validate::DeviceDecl {
                        id: d.id.clone(),
                        site: d.site.clone(),
                        kind: anquan_protocol::DeviceKind::FirePanel,
                    },
                )
            });
        polled.chain(fire_panels)
    }

    /// The effective configuration as TOML, as `check` prints it: secrets
    /// show where they come from (`env:NAME`, `file:PATH`) or `***`.
    pub fn to_effective_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }
}

fn line_of(src: &str, offset: usize) -> usize {
    src.get(..offset).map_or(1, |s| s.matches('\n').count() + 1)
}

fn syntax(src: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|s| format!(" (line {})", line_of(src, s.start)));
    ConfigError::new(
        "(syntax)",
        format!("{}{}", e.message().trim(), line.unwrap_or_default()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[gateway]
id = "gw-01"
data_dir = "/tmp/x"
"#;

    #[test]
    fn minimal_config_takes_the_defaults() {
        let c = Config::parse(MINIMAL).unwrap();
        assert_eq!(c.gateway.id, "gw-01");
        assert_eq!(c.mqtt.port, 1883);
        assert!(!c.broker.enabled);
        assert_eq!(c.sink.kind, sink::SinkType::File);
    }

    #[test]
    fn errors_name_the_key() {
        let e = Config::parse(&format!("{MINIMAL}\n[mqtt]\nport = \"x\"\n")).unwrap_err();
        assert_eq!(e.key, "mqtt.port", "{e}");
        let e = Config::parse(&format!("{MINIMAL}\n[mqtt]\nprot = 1\n")).unwrap_err();
        assert!(e.message.contains("prot"), "{e}");
        let e = Config::parse(&format!("{MINIMAL}\n[api]\nlisten = \"nowhere\"\n")).unwrap_err();
        assert_eq!(e.key, "api.listen", "{e}");
        let e = Config::parse("[gateway]\nid = \"a b\"\ndata_dir = \"x\"\n").unwrap_err();
        assert_eq!(e.key, "gateway.id", "{e}");
        let e = Config::parse("[gateway\n").unwrap_err();
        assert_eq!(e.key, "(syntax)", "{e}");
        let e = Config::parse(&format!(
            "{MINIMAL}\n[sink]\ntype = \"influx\"\n[sink.influx]\nurl = \"ftp://x\"\norg = \"o\"\nbucket = \"b\"\ntoken = \"t\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "sink.influx.url", "{e}");
    }

    #[test]
    fn secrets_come_from_files_or_the_environment_and_are_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("monitor.token"), "s3cret\n").unwrap();
        let cfg_path = dir.path().join("gateway.toml");
        std::fs::write(
            &cfg_path,
            format!(
                "{MINIMAL}\n[mqtt]\nusername = \"gw\"\npassword = \"plain-pass\"\n\
                 [forward.http]\nurl = \"http://127.0.0.1:1\"\ntoken = \"file:monitor.token\"\n"
            ),
        )
        .unwrap();
        let c = Config::load(&cfg_path).unwrap();
        let http = c.forward.http.as_ref().unwrap();
        assert_eq!(http.token.expose(), "s3cret", "relative to the config file");
        let shown = c.to_effective_toml();
        assert!(
            !shown.contains("s3cret") && !shown.contains("plain-pass"),
            "{shown}"
        );
        assert!(shown.contains("file:") && shown.contains("***"), "{shown}");
        assert!(!format!("{c:?}").contains("plain-pass"));
        let w = c.warnings();
        assert!(w.iter().any(|w| w.starts_with("mqtt.password:")), "{w:?}");
        // A token in a missing file or unset variable names the key.
        let e = Config::parse(&format!(
            "{MINIMAL}\n[forward.http]\nurl = \"http://127.0.0.1:1\"\ntoken = \"env:ANQUAN_NO_SUCH_VARIABLE\"\n"
        ))
        .unwrap_err();
        assert_eq!(e.key, "forward.http.token", "{e}");
    }

    #[test]
    fn the_lab_clock_is_off_unless_asked_for_and_warned_about() {
        let c = Config::parse(MINIMAL).unwrap();
        assert!(!c.lab.driven());
        assert!(c.warnings().is_empty());
        let c = Config::parse(&format!("{MINIMAL}\n[lab]\nclock = \"driven\"\n")).unwrap();
        assert!(c.lab.driven());
        assert!(
            c.warnings().iter().any(|w| w.starts_with("lab.clock:")),
            "{:?}",
            c.warnings()
        );
        let e = Config::parse(&format!("{MINIMAL}\n[lab]\nclock = \"fast\"\n")).unwrap_err();
        assert_eq!(e.key, "lab.clock", "{e}");
    }

    #[test]
    fn the_mixed_site_example_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mixed-site.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.modbus.links.len(), 2);
        assert_eq!(c.modbus.devices().count(), 5);
        let again = Config::parse(&c.to_effective_toml()).unwrap();
        assert_eq!(again.modbus, c.modbus);
    }

    #[test]
    fn the_dtu_site_example_is_valid_and_in_the_readme() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = Config::load(&dir.join("examples/dtu-site.toml")).unwrap();
        let dtu = c.modbus.dtu.clone().unwrap();
        assert_eq!(dtu.heartbeat_bytes(), Some(b"HB".to_vec()));
        assert_eq!(c.modbus.links.len(), 2);
        assert!(
            c.modbus
                .links
                .iter()
                .all(|l| l.transport == crate::modbus::Transport::Dtu)
        );
        assert_eq!(c.modbus.devices().count(), 4);
        let again = Config::parse(&c.to_effective_toml()).unwrap();
        assert_eq!(again.modbus, c.modbus);
        // The README shows this file whole, from `[gateway]` on.
        let text = std::fs::read_to_string(dir.join("examples/dtu-site.toml")).unwrap();
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let body = &text[text.find("[gateway]").unwrap()..];
        assert!(
            readme.contains(body),
            "gateway/README.md \"DTUs that dial in\" must show examples/dtu-site.toml from [gateway] on"
        );
    }

    #[test]
    fn the_fire_panels_example_is_valid_and_in_the_readme() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let c = Config::load(&dir.join("examples/fire-panels.toml")).unwrap();
        let g = c.gb26875.clone().unwrap();
        assert_eq!(g.devices.len(), 2);
        assert_eq!(g.devices[0].address, 100_001);
        let again = Config::parse(&c.to_effective_toml()).unwrap();
        assert_eq!(again.gb26875, c.gb26875);
        let text = std::fs::read_to_string(dir.join("examples/fire-panels.toml")).unwrap();
        let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
        let body = &text[text.find("[gateway]").unwrap()..];
        assert!(
            readme.contains(body),
            "gateway/README.md \"Fire-alarm transmission devices\" must show examples/fire-panels.toml from [gateway] on"
        );
    }

    #[test]
    fn a_fire_panel_id_is_one_device() {
        let base = "[gateway]\nid = \"g\"\ndata_dir = \"/tmp/x\"\n\n[gb26875]\nlisten = \"127.0.0.1:9026\"\n[[gb26875.devices]]\naddress = 1\nid = \"fp-1\"\nsite = \"s1\"\n";
        assert!(Config::parse(base).is_ok());
        let clash =
            format!("{base}\n[[validate.devices]]\nid = \"fp-1\"\nsite = \"s1\"\nkind = \"gas\"\n");
        let e = Config::parse(&clash).unwrap_err();
        assert_eq!(e.key, "gb26875.devices[0].id");
        let same = format!(
            "{base}\n[[validate.devices]]\nid = \"fp-1\"\nsite = \"s1\"\nkind = \"fire_panel\"\n"
        );
        assert!(Config::parse(&same).is_ok());
    }

    #[test]
    fn the_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.toml");
        let c = Config::load(&path).unwrap();
        assert_eq!(c.gateway.id, "gw-01");
        // Round trip: the effective config parses again.
        let again = Config::parse(&c.to_effective_toml()).unwrap();
        assert_eq!(again.gateway, c.gateway);
    }
}
