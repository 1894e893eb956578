//! Who may sign in (SPEC §11): [`IdentityAllowlist`], the rule behind
//! `ALLOWED_IDENTITIES` (the JSON API) and `GATE_ALLOWED_IDENTITIES` (the
//! web gate).
//!
//! A list is entries separated by commas and/or white space; an identity is
//! allowed if and only if one entry matches its **normalized** form (SPEC
//! §3.4), so `Alice@Example.COM` and `+44 20 7946 0958` match the entries
//! `alice@example.com` and `+442079460958`. Entries:
//!
//! | entry | matches |
//! |---|---|
//! | `*` | every identity |
//! | `*@example.com` | every email address whose domain is exactly `example.com` (not `eu.example.com`: list each domain) |
//! | `+44*` | every phone number whose E.164 form starts with `+44` |
//! | anything else | that one identity, normalized as §3.4 normalizes a request (email, phone or opaque id) |
//!
//! Domains are compared in their canonical form (lower case, IDN as
//! punycode), the same form an email identity is stored in, so
//! `*@BÜCHER.example` and `*@xn--bcher-kva.example` are one entry.
//! Subdomains do not match a domain entry: `*@example.com` admitting
//! `mallory@mail.attacker.example.com`-style names would hand the decision
//! to whoever runs DNS below the domain, and an operator who means them can
//! list them.
//!
//! `*` is only a wildcard in those three positions; an entry with `*`
//! anywhere else (`bob*@example.com`, `*.example.com`, `+44*7`) is refused
//! when the list is parsed rather than taken as an exact identity that
//! nobody would ever type, so opaque ids containing `*` cannot be listed.
//!
//! A refused request is answered after about the time a delivery to that
//! kind of identity typically takes ([`DeliveryPace`]: a moving average of
//! the recent successful deliveries), so the answer's timing does not
//! simply tell a refused identity from one that was sent a code.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use otp_core::{Identity, IdentityKind};

/// Why an identity list is not valid. The message names the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AllowlistError {
    /// The list has no entry (empty, or only separators).
    #[error("the list has no entry (use '*' to allow anyone)")]
    Empty,
    /// One entry is neither `*`, `*@domain`, `+<digits>*` nor a valid
    /// identity.
    #[error("entry '{entry}': {reason}")]
    InvalidEntry {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The identities allowed to receive a code (SPEC §11).
///
/// ```
/// use otp_service::{Identity, IdentityAllowlist};
///
/// let list = IdentityAllowlist::parse("alice@example.com, *@corp.example  +44*").unwrap();
/// let allows = |raw: &str| list.allows(&Identity::parse(raw).unwrap());
/// assert!(allows(" Alice@EXAMPLE.com"));   // exact, after normalization
/// assert!(allows("bob@Corp.Example"));      // the domain entry
/// assert!(!allows("bob@eu.corp.example"));  // not a subdomain
/// assert!(allows("+44 20 7946 0958"));      // the phone prefix
/// assert!(!allows("+14155550100"));
/// assert!(!allows("carol@example.com"));
///
/// assert!(IdentityAllowlist::anyone().allows(&Identity::parse("anyone").unwrap()));
/// assert!(IdentityAllowlist::parse("bob*@example.com").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct IdentityAllowlist {
    anyone: bool,
    /// Normalized identities.
    exact: HashSet<String>,
    /// Email domains in canonical form.
    domains: HashSet<String>,
    /// Phone prefixes, `+` and digits.
    phone_prefixes: Vec<String>,
}

impl IdentityAllowlist {
    /// The list that allows every identity: `*`, and what an unset
    /// `ALLOWED_IDENTITIES` means.
    pub fn anyone() -> Self {
        IdentityAllowlist {
            anyone: true,
            exact: HashSet::new(),
            domains: HashSet::new(),
            phone_prefixes: Vec::new(),
        }
    }

    /// Parses a list: entries separated by commas and/or white space, each
    /// `*`, `*@domain`, `+<digits>*` or one identity (see the
    /// [module docs](self)). Refuses an empty list and names the first bad
    /// entry.
    pub fn parse(spec: &str) -> Result<Self, AllowlistError> {
        let mut list = IdentityAllowlist {
            anyone: false,
            exact: HashSet::new(),
            domains: HashSet::new(),
            phone_prefixes: Vec::new(),
        };
        let mut entries = 0usize;
        for entry in spec
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty())
        {
            entries += 1;
            list.add(entry)
                .map_err(|reason| AllowlistError::InvalidEntry {
                    entry: entry.to_owned(),
                    reason: reason.to_owned(),
                })?;
        }
        if entries == 0 {
            return Err(AllowlistError::Empty);
        }
        Ok(list)
    }

    fn add(&mut self, entry: &str) -> Result<(), String> {
        if entry == "*" {
            self.anyone = true;
            return Ok(());
        }
        if let Some(domain) = entry.strip_prefix("*@") {
            if domain.contains('*') {
                return Err("a domain entry is '*@' and one exact domain".into());
            }
            // The domain normalized exactly as an email identity's is.
            let probe = Identity::parse(&format!("x@{domain}"))
                .map_err(|e| format!("not a valid email domain ({e})"))?;
            let (_, canonical) = probe.as_str().split_once('@').unwrap_or_default();
            self.domains.insert(canonical.to_owned());
            return Ok(());
        }
        if let Some(prefix) = entry.strip_suffix('*').filter(|p| p.starts_with('+')) {
            let digits = &prefix[1..];
            if digits.is_empty()
                || digits.len() > 15
                || !digits.bytes().all(|b| b.is_ascii_digit())
                || digits.starts_with('0')
            {
                return Err(
                    "a phone prefix is '+', 1 to 15 digits (the first not 0), then '*'".into(),
                );
            }
            self.phone_prefixes.push(prefix.to_owned());
            return Ok(());
        }
        if entry.contains('*') {
            return Err(
                "'*' is only allowed as '*', '*@domain' or a phone prefix such as '+44*'".into(),
            );
        }
        let identity = Identity::parse(entry).map_err(|e| e.to_string())?;
        self.exact.insert(identity.into_string());
        Ok(())
    }

    /// Returns true if and only if some entry matches `identity` (already
    /// normalized: every [`Identity`] is).
    pub fn allows(&self, identity: &Identity) -> bool {
        if self.anyone || self.exact.contains(identity.as_str()) {
            return true;
        }
        match identity.kind() {
            IdentityKind::Email => identity
                .as_str()
                .rsplit_once('@')
                .is_some_and(|(_, domain)| self.domains.contains(domain)),
            IdentityKind::Phone => self
                .phone_prefixes
                .iter()
                .any(|p| identity.as_str().starts_with(p.as_str())),
            IdentityKind::Opaque => false,
        }
    }

    /// Returns true if and only if the list allows every identity (it is
    /// [`IdentityAllowlist::anyone`] or contains `*`).
    pub fn is_anyone(&self) -> bool {
        self.anyone
    }
}

impl Default for IdentityAllowlist {
    /// [`IdentityAllowlist::anyone`].
    fn default() -> Self {
        Self::anyone()
    }
}

impl fmt::Debug for IdentityAllowlist {
    /// Counts, not the entries: the list names people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityAllowlist")
            .field("anyone", &self.anyone)
            .field("exact", &self.exact.len())
            .field("domains", &self.domains.len())
            .field("phone_prefixes", &self.phone_prefixes.len())
            .finish()
    }
}

/// The typical time of a successful delivery per kind of identity: an
/// exponentially weighted moving average (weight 1/8, the first sample
/// taken as is), each sample capped at [`DeliveryPace::MAX`]. A refused
/// identity's request waits this long before it is answered.
#[derive(Debug, Default)]
pub(crate) struct DeliveryPace {
    micros: [AtomicU64; 3],
}

impl DeliveryPace {
    /// The longest sample recorded (and so the longest wait).
    pub(crate) const MAX: Duration = Duration::from_secs(5);

    fn slot(&self, kind: IdentityKind) -> &AtomicU64 {
        &self.micros[match kind {
            IdentityKind::Email => 0,
            IdentityKind::Phone => 1,
            IdentityKind::Opaque => 2,
        }]
    }

    /// Records that a delivery to `kind` succeeded after `took`.
    pub(crate) fn record(&self, kind: IdentityKind, took: Duration) {
        let sample = u64::try_from(took.min(Self::MAX).as_micros()).unwrap_or(u64::MAX);
        let _ = self
            .slot(kind)
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample.max(1)
                } else {
                    old - old / 8 + sample / 8
                })
            });
    }

    /// The typical delivery time to `kind` (zero before the first delivery).
    pub(crate) fn typical(&self, kind: IdentityKind) -> Duration {
        Duration::from_micros(self.slot(kind).load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(raw: &str) -> Identity {
        Identity::parse(raw).unwrap()
    }

    #[test]
    fn exact_entries_match_the_normalized_identity_only() {
        let list = IdentityAllowlist::parse("Alice@Example.com +1 415 555 0100").unwrap_err();
        // '+1' alone is not a phone number: white space separates entries.
        assert!(matches!(list, AllowlistError::InvalidEntry { ref entry, .. } if entry == "+1"));
        let list = IdentityAllowlist::parse("Alice@Example.com,+1(415)555-0100, User42").unwrap();
        assert!(list.allows(&id("alice@example.COM")));
        assert!(list.allows(&id("+1 415 555 0100")));
        assert!(list.allows(&id("User42")));
        assert!(!list.allows(&id("user42")), "opaque ids keep their case");
        assert!(!list.allows(&id("alice@example.org")));
        assert!(!list.allows(&id("+14155550101")));
        assert!(!list.is_anyone());
    }

    #[test]
    fn a_domain_entry_matches_that_domain_and_no_subdomain_or_lookalike() {
        let list = IdentityAllowlist::parse("*@Example.COM").unwrap();
        assert!(list.allows(&id("bob@example.com")));
        assert!(list.allows(&id("BOB@EXAMPLE.COM")));
        assert!(!list.allows(&id("bob@eu.example.com")));
        assert!(!list.allows(&id("bob@example.com.evil.test")));
        assert!(!list.allows(&id("bob@badexample.com")));
        assert!(!list.allows(&id("example.com")));
        assert!(!list.allows(&id("+14155550100")));
    }

    #[test]
    fn internationalized_domains_are_one_entry_in_either_form() {
        let unicode = IdentityAllowlist::parse("*@BÜCHER.example").unwrap();
        let puny = IdentityAllowlist::parse("*@xn--bcher-kva.example").unwrap();
        for list in [unicode, puny] {
            assert!(list.allows(&id("anna@bücher.example")));
            assert!(list.allows(&id("anna@xn--bcher-kva.example")));
            assert!(!list.allows(&id("anna@bucher.example")));
        }
    }

    #[test]
    fn a_phone_prefix_matches_the_e164_form() {
        let list = IdentityAllowlist::parse("+44*, +1415*").unwrap();
        assert!(list.allows(&id("+44 20 7946 0958")));
        assert!(list.allows(&id("+1 (415) 555-0100")));
        assert!(!list.allows(&id("+14165550100")));
        assert!(!list.allows(&id("+3344207946095")));
        assert!(!list.allows(&id("44207946095")), "an opaque id is no phone");
    }

    #[test]
    fn star_allows_everyone_and_anyone_is_the_default() {
        for list in [
            IdentityAllowlist::parse("*").unwrap(),
            IdentityAllowlist::parse("alice@example.com, *").unwrap(),
            IdentityAllowlist::anyone(),
            IdentityAllowlist::default(),
        ] {
            assert!(list.is_anyone());
            for raw in ["x@y.example", "+14155550100", "opaque"] {
                assert!(list.allows(&id(raw)));
            }
        }
    }

    #[test]
    fn bad_lists_are_refused_naming_the_entry() {
        assert_eq!(IdentityAllowlist::parse(""), Err(AllowlistError::Empty));
        assert_eq!(
            IdentityAllowlist::parse(" ,, \n"),
            Err(AllowlistError::Empty)
        );
        for bad in [
            "bob*@example.com",
            "*.example.com",
            "*@*.example.com",
            "*@",
            "*@[192.0.2.1]",
            "*@example.com.",
            "+*",
            "+0*",
            "+44x*",
            "+44*7",
            "+1234567890123456*",
            "a@b@c",
            "+123",
            "**",
        ] {
            match IdentityAllowlist::parse(&format!("alice@example.com, {bad}")) {
                Err(AllowlistError::InvalidEntry { entry, reason }) => {
                    assert_eq!(entry, bad);
                    assert!(!reason.is_empty());
                    let line = AllowlistError::InvalidEntry { entry, reason }.to_string();
                    assert!(line.starts_with(&format!("entry '{bad}': ")), "{line}");
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_delivery_pace_follows_recent_deliveries_per_kind() {
        let pace = DeliveryPace::default();
        assert_eq!(pace.typical(IdentityKind::Email), Duration::ZERO);
        pace.record(IdentityKind::Email, Duration::from_millis(800));
        assert_eq!(
            pace.typical(IdentityKind::Email),
            Duration::from_millis(800)
        );
        assert_eq!(
            pace.typical(IdentityKind::Phone),
            Duration::ZERO,
            "per kind"
        );
        for _ in 0..40 {
            pace.record(IdentityKind::Email, Duration::from_millis(100));
        }
        let t = pace.typical(IdentityKind::Email);
        assert!(
            t >= Duration::from_millis(100) && t < Duration::from_millis(105),
            "{t:?}"
        );
        pace.record(IdentityKind::Phone, Duration::from_secs(60));
        assert_eq!(pace.typical(IdentityKind::Phone), DeliveryPace::MAX);
    }

    #[test]
    fn debug_shows_counts_not_identities() {
        let list = IdentityAllowlist::parse("alice@example.com *@corp.example +44*").unwrap();
        let shown = format!("{list:?}");
        assert!(!shown.contains("alice"), "{shown}");
        assert!(!shown.contains("corp"), "{shown}");
        assert!(shown.contains("exact: 1"), "{shown}");
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever case an address is written in, its exact entry and its
        /// domain's entry allow it, and a different domain's entry does not.
        #[test]
        fn email_entries_match_every_spelling_of_the_address(
            local in "[a-z0-9]{1,12}",
            domain in "[a-z]{1,10}\\.(com|org|example)",
            other in "[a-z]{1,10}\\.net",
            upper in any::<bool>(),
        ) {
            let written = if upper { format!("{local}@{domain}").to_uppercase() } else { format!("{local}@{domain}") };
            let identity = Identity::parse(&format!("  {written} ")).unwrap();
            let allows = |spec: String| IdentityAllowlist::parse(&spec).unwrap().allows(&identity);
            prop_assert!(allows(written.clone()));
            let (own, foreign, sub) = (
                format!("*@{}", domain.to_uppercase()),
                format!("*@{other}"),
                format!("*@sub.{domain}"),
            );
            prop_assert!(allows(own));
            prop_assert!(!allows(foreign));
            prop_assert!(!allows(sub));
        }

        /// A phone prefix allows a number if and only if the number's E.164
        /// form starts with it.
        #[test]
        fn a_phone_prefix_allows_exactly_the_numbers_it_starts(
            number in "[1-9][0-9]{7,14}",
            prefix in "[1-9][0-9]{0,5}",
        ) {
            let identity = Identity::parse(&format!("+{number}")).unwrap();
            let list = IdentityAllowlist::parse(&format!("+{prefix}*")).unwrap();
            prop_assert_eq!(list.allows(&identity), number.starts_with(&prefix));
            let own = IdentityAllowlist::parse(&format!("+{}*", &number[..number.len().min(4)])).unwrap();
            prop_assert!(own.allows(&identity));
        }
    }
}
