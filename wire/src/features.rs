//! Feature sets: the features of a crate version a review covers, as a dependent's build
//! activates them (`default` stands for the crate's default features being on).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A set of feature names, kept sorted; serialised as a JSON array.
#[derive(
    Debug,
    Clone,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
pub struct FeatureSet(pub BTreeSet<String>);

impl FeatureSet {
    /// The set of `names`.
    pub fn of<I: IntoIterator<Item = S>, S: Into<String>>(names: I) -> Self {
        Self(names.into_iter().map(Into::into).collect())
    }

    /// The features of `self` that `covering` lacks, in order.
    pub fn missing_from(&self, covering: &FeatureSet) -> Vec<String> {
        self.0.difference(&covering.0).cloned().collect()
    }

    /// Whether every feature of `self` is in `covering`.
    pub fn is_covered_by(&self, covering: &FeatureSet) -> bool {
        self.0.is_subset(&covering.0)
    }

    /// `self` with `other`'s features added.
    pub fn union(&self, other: &FeatureSet) -> FeatureSet {
        FeatureSet(self.0.union(&other.0).cloned().collect())
    }

    /// Whether the set turns a crate's default features on.
    pub fn has_default(&self) -> bool {
        self.0.contains("default")
    }

    /// The features other than `default`, for a Cargo dependency declaration.
    pub fn named(&self) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .map(String::as_str)
            .filter(|f| *f != "default")
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The set as text for people: `default, derive` or `(no features)`.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            "(no features)".to_owned()
        } else {
            self.0.iter().cloned().collect::<Vec<_>>().join(", ")
        }
    }
}

impl std::fmt::Display for FeatureSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_cover_unite_and_name_what_is_missing() {
        let curated = FeatureSet::of(["default", "std"]);
        let wanted = FeatureSet::of(["std", "derive", "default"]);
        assert!(!wanted.is_covered_by(&curated));
        assert_eq!(wanted.missing_from(&curated), ["derive"]);
        let both = curated.union(&wanted);
        assert!(wanted.is_covered_by(&both));
        assert_eq!(both.named().collect::<Vec<_>>(), ["derive", "std"]);
        assert_eq!(
            serde_json::to_string(&both).unwrap(),
            r#"["default","derive","std"]"#
        );
        assert_eq!(FeatureSet::default().to_string(), "(no features)");
    }
}
