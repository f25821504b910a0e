//! The rule file format as typed structs (serde, unknown keys rejected), and byte offsets to
//! line and column.
//!
//! Match values may be one item or a list of items, each an integer, a float, a string or a
//! boolean; every item keeps its own span so a semantic error points at the item itself.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ops::Range;
use toml::Spanned;

/// One rule file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    /// Named host groups.
    #[serde(default)]
    pub(crate) groups: BTreeMap<String, Spanned<Vec<Spanned<String>>>>,
    /// The rules.
    #[serde(default)]
    pub(crate) rule: Vec<RawRule>,
}

/// One `[[rule]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRule {
    pub(crate) id: Spanned<u32>,
    pub(crate) rev: u32,
    pub(crate) title: String,
    pub(crate) severity: Spanned<String>,
    #[serde(default)]
    pub(crate) attack: Vec<Spanned<String>>,
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) enabled: Option<bool>,
    #[serde(default)]
    pub(crate) requires: Vec<Spanned<String>>,
    #[serde(rename = "match")]
    pub(crate) matcher: RawMatch,
    #[serde(default)]
    pub(crate) threshold: Option<Spanned<RawThreshold>>,
}

/// `[rule.threshold]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawThreshold {
    pub(crate) count: Spanned<u32>,
    pub(crate) seconds: Spanned<u32>,
    #[serde(default)]
    pub(crate) track: Option<Spanned<String>>,
}

/// Values of a match key: one item or several.
pub(crate) type Items = Spanned<OneOrMany>;

/// `[rule.match]`: every key optional except `proto`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMatch {
    pub(crate) proto: Spanned<String>,
    pub(crate) src: Option<Items>,
    pub(crate) dst: Option<Items>,
    pub(crate) src_port: Option<Items>,
    pub(crate) dst_port: Option<Items>,
    pub(crate) op: Option<Items>,
    pub(crate) outcome: Option<Items>,
    pub(crate) violation: Option<Items>,
    pub(crate) unit: Option<Items>,
    pub(crate) function: Option<Items>,
    pub(crate) category: Option<Items>,
    pub(crate) sub_function: Option<Items>,
    pub(crate) table: Option<Items>,
    pub(crate) address: Option<Items>,
    pub(crate) access: Option<Items>,
    pub(crate) value: Option<Items>,
    pub(crate) exception: Option<Items>,
    pub(crate) service: Option<Items>,
    pub(crate) node: Option<Items>,
    pub(crate) node_prefix: Option<Items>,
    pub(crate) namespace: Option<Items>,
    pub(crate) attribute: Option<Items>,
    pub(crate) security_mode: Option<Items>,
    pub(crate) security_policy: Option<Items>,
    pub(crate) identity: Option<Items>,
    pub(crate) status: Option<Items>,
}

/// One item of a match value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar {
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
}

/// One item, or a list of items each with its own span.
#[derive(Debug)]
pub(crate) enum OneOrMany {
    One(Scalar),
    Many(Vec<Spanned<Scalar>>),
}

/// Every item of a match value with its span.
pub(crate) fn items(v: &Items) -> Vec<(Range<usize>, &Scalar)> {
    match v.get_ref() {
        OneOrMany::One(s) => vec![(v.span(), s)],
        OneOrMany::Many(list) => list.iter().map(|s| (s.span(), s.get_ref())).collect(),
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer, a number, a string or a boolean")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        i64::try_from(v)
            .map(Scalar::Int)
            .map_err(|_| E::custom("integer too large"))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct OneOrManyVisitor;

impl<'de> Visitor<'de> for OneOrManyVisitor {
    type Value = OneOrMany;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an integer, a number, a string, a boolean or a list of them")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_i64(v).map(OneOrMany::One)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<OneOrMany, E> {
        ScalarVisitor.visit_u64(v).map(OneOrMany::One)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(Scalar::Float(v)))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(Scalar::Bool(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(Scalar::Str(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<OneOrMany, E> {
        Ok(OneOrMany::One(Scalar::Str(v)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
        let mut v = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Scalar>>()? {
            v.push(item);
        }
        Ok(OneOrMany::Many(v))
    }
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneOrManyVisitor)
    }
}

/// 1-based line and column (in characters) of byte offset `at` in `text`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = text.get(..at).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}
