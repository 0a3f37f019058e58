//! The host's stats store: metrics defined by any VM are shared by name (as in Envoy, where
//! `define_metric` creates the stat `wasmcustom.<name>` once for all workers), and exposed like
//! Envoy's admin `/stats/prometheus`: without the `wasmcustom.` prefix, `.` turned into `_`, and
//! with the bootstrap's `stats_tags` turned into labels.

use std::sync::Mutex;

use crate::vm::status;

const COUNTER: i32 = 0;
const GAUGE: i32 = 1;
const HISTOGRAM: i32 = 2;

/// Envoy's default histogram buckets (milliseconds for our response times).
const BUCKETS: &[f64] = &[
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

#[derive(Debug, Clone)]
struct Metric {
    name: String,
    kind: i32,
    value: i64,
    samples: Vec<u64>,
}

/// All metrics of all VMs of one host.
#[derive(Debug, Default)]
pub struct MetricStore {
    metrics: Mutex<Vec<Metric>>,
    tags: Vec<(String, regex::Regex)>,
}

impl MetricStore {
    /// A store that extracts labels like Envoy's `stats_config.stats_tags`; an invalid regex is
    /// refused, as Envoy refuses the bootstrap.
    pub fn with_tags(tags: &[(String, String)]) -> Result<Self, String> {
        let tags = tags
            .iter()
            .map(|(name, re)| {
                regex::Regex::new(re)
                    .map(|r| (name.clone(), r))
                    .map_err(|e| format!("stats tag {name}: invalid regex: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            metrics: Mutex::default(),
            tags,
        })
    }

    /// Envoy's tag extraction: each specifier in turn matches the stat's full name
    /// (`wasmcustom.…`); on a match the first group is cut out of the name and the second is the
    /// tag's value. Returns the name left and the labels (`name="value"`, in specifier order).
    fn extract(&self, stat: &str) -> (String, Vec<String>) {
        let mut name = stat.to_owned();
        let mut labels = Vec::new();
        for (tag, re) in &self.tags {
            let Some(c) = re.captures(&name) else {
                continue;
            };
            let (Some(cut), Some(value)) = (c.get(1), c.get(2)) else {
                continue;
            };
            labels.push(format!("{tag}=\"{}\"", value.as_str()));
            let range = cut.range();
            name.replace_range(range, "");
        }
        (name, labels)
    }

    /// Defines (or finds) a metric; `None` for an unknown type.
    pub fn define(&self, kind: i32, name: &str) -> Option<usize> {
        if !(COUNTER..=HISTOGRAM).contains(&kind) || name.is_empty() {
            return None;
        }
        let mut m = self.metrics.lock().ok()?;
        if let Some(i) = m.iter().position(|x| x.name == name && x.kind == kind) {
            return Some(i);
        }
        m.push(Metric {
            name: name.to_owned(),
            kind,
            value: 0,
            samples: Vec::new(),
        });
        Some(m.len() - 1)
    }

    /// `proxy_increment_metric`: counters take only positive deltas.
    pub fn increment(&self, id: usize, offset: i64) -> i32 {
        let Ok(mut m) = self.metrics.lock() else {
            return status::BAD_ARGUMENT;
        };
        let Some(x) = m.get_mut(id) else {
            return status::NOT_FOUND;
        };
        match x.kind {
            COUNTER if offset <= 0 => status::BAD_ARGUMENT,
            COUNTER | GAUGE => {
                x.value += offset;
                status::OK
            }
            _ => status::BAD_ARGUMENT,
        }
    }

    /// `proxy_record_metric`: sets a gauge, records a histogram sample.
    pub fn record(&self, id: usize, value: u64) -> i32 {
        let Ok(mut m) = self.metrics.lock() else {
            return status::BAD_ARGUMENT;
        };
        let Some(x) = m.get_mut(id) else {
            return status::NOT_FOUND;
        };
        match x.kind {
            HISTOGRAM => x.samples.push(value),
            COUNTER => x.value += value as i64,
            _ => x.value = value as i64,
        }
        status::OK
    }

    /// Current value (histograms: sample count).
    pub fn value(&self, id: usize) -> u64 {
        self.metrics
            .lock()
            .ok()
            .and_then(|m| {
                m.get(id).map(|x| {
                    if x.kind == HISTOGRAM {
                        x.samples.len() as u64
                    } else {
                        x.value as u64
                    }
                })
            })
            .unwrap_or(0)
    }

    /// A counter or gauge by its defined name (for tests).
    pub fn get(&self, name: &str) -> Option<i64> {
        let m = self.metrics.lock().ok()?;
        m.iter()
            .find(|x| x.name == name && x.kind != HISTOGRAM)
            .map(|x| x.value)
    }

    /// Prometheus text, as Envoy's admin `/stats/prometheus` shows custom wasm metrics.
    pub fn prometheus(&self) -> String {
        let Ok(m) = self.metrics.lock() else {
            return String::new();
        };
        let mut out = String::new();
        let mut typed = std::collections::HashSet::new();
        for x in m.iter() {
            let (stripped, labels) = self.extract(&format!("wasmcustom.{}", x.name));
            let stripped = stripped.strip_prefix("wasmcustom.").unwrap_or(&stripped);
            let name: String = stripped
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let kind = match x.kind {
                COUNTER => "counter",
                GAUGE => "gauge",
                _ => "histogram",
            };
            // One TYPE line per metric family: tagged stats share their stripped name.
            if typed.insert(name.clone()) {
                out.push_str(&format!("# TYPE {name} {kind}\n"));
            }
            let l = labels.join(",");
            let with = |extra: &str| {
                if l.is_empty() {
                    format!("{{{extra}}}")
                } else if extra.is_empty() {
                    format!("{{{l}}}")
                } else {
                    format!("{{{l},{extra}}}")
                }
            };
            if x.kind == HISTOGRAM {
                for b in BUCKETS {
                    let n = x.samples.iter().filter(|s| (**s as f64) <= *b).count();
                    out.push_str(&format!(
                        "{name}_bucket{} {n}\n",
                        with(&format!("le=\"{b}\""))
                    ));
                }
                let sum: u64 = x.samples.iter().sum();
                let count = x.samples.len();
                out.push_str(&format!(
                    "{name}_bucket{} {count}\n{name}_sum{} {sum}\n{name}_count{} {count}\n",
                    with("le=\"+Inf\""),
                    with(""),
                    with("")
                ));
            } else {
                out.push_str(&format!("{name}{} {}\n", with(""), x.value));
            }
        }
        out
    }
}
