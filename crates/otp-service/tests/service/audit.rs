//! Audit events through the embedding API (SPEC §10): an [`AuditSink`]
//! receives each fact with what the transport's [`RequestContext`] gave
//! (client network as a pseudonym, request id), the session id where there
//! is one, and `sign_in` also with sessions off. The binary's webhook and
//! every event kind are tested in otp-server (`tests/server/audit.rs`).

use std::sync::{Arc, Mutex};

use otp_service::{
    AuditEvent, AuditEventKind, AuditSink, MemoryStore, OtpService, RequestContext, VerifyOptions,
};

use crate::harness::{config, tokens, Outbox};

/// Keeps every event.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<AuditEvent>>);

impl AuditSink for Recorder {
    fn send(&self, event: AuditEvent) {
        self.0.lock().unwrap().push(event);
    }
}

impl Recorder {
    fn take(&self) -> Vec<AuditEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

fn service(sessions: bool, include_identity: bool) -> (OtpService, Arc<Outbox>, Arc<Recorder>) {
    let mut c = config();
    c.sessions.enabled = sessions;
    c.audit.include_identity = include_identity;
    let outbox = Outbox::new();
    let recorder = Arc::new(Recorder::default());
    let service = OtpService::builder(c, tokens())
        .store(Arc::new(MemoryStore::default()))
        .delivery(outbox.clone())
        .audit_sink(recorder.clone())
        .build();
    (service, outbox, recorder)
}

fn ctx(request_id: &str) -> RequestContext {
    RequestContext::with_ip("192.0.2.9".parse().unwrap()).with_request_id(request_id)
}

#[tokio::test]
async fn an_audit_sink_gets_each_fact_with_the_request_context_and_pseudonyms() {
    let (s, outbox, rec) = service(true, false);
    let id = "sink@example.com";
    s.request_otp(id, &ctx("req-1")).await.unwrap();
    let v = s
        .verify_otp(
            id,
            &outbox.last_code(id),
            &ctx("req-2"),
            VerifyOptions::new(),
        )
        .await
        .unwrap();
    let refresh = v.refresh.expect("a session").token;
    s.refresh_with(&refresh, &ctx("req-3")).await.unwrap();
    // Without a context (the embedding's own call): no network, no id.
    s.revoke(&refresh).await.unwrap();
    let events = rec.take();
    let kinds: Vec<AuditEventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            AuditEventKind::CodeSent,
            AuditEventKind::SignIn,
            AuditEventKind::Refresh,
            AuditEventKind::Revoke
        ]
    );
    let ids: Vec<Option<&str>> = events.iter().map(|e| e.request_id.as_deref()).collect();
    assert_eq!(ids, [Some("req-1"), Some("req-2"), Some("req-3"), None]);
    let subject = &events[0].subject;
    assert_eq!(subject.len(), 32);
    assert!(events
        .iter()
        .all(|e| &e.subject == subject && !e.subject.contains(id)));
    let network = events[0].network.clone().expect("a network");
    assert_ne!(network, "192.0.2.9");
    assert_ne!(
        &network, subject,
        "the network has its own pseudonym domain"
    );
    assert_eq!(events[2].network.as_deref(), Some(network.as_str()));
    assert_eq!(events[3].network, None);
    assert_eq!(events[0].sid, None);
    assert!(events[1].sid.is_some() && events[1].sid == events[2].sid);
    let unique: std::collections::BTreeSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(unique.len(), events.len(), "every event has its own id");
    for e in &events {
        let body = e.webhook_body();
        assert!(!body.contains(&outbox.last_code(id)) && !body.contains(&refresh));
    }
}

#[tokio::test]
async fn sign_in_is_audited_without_a_session_and_names_the_identity_when_asked() {
    let (s, outbox, rec) = service(false, true);
    let id = "named@example.com";
    s.request_otp(id, &ctx("a")).await.unwrap();
    let v = s
        .verify_otp(id, &outbox.last_code(id), &ctx("b"), VerifyOptions::new())
        .await
        .unwrap();
    assert!(v.refresh.is_none());
    let events = rec.take();
    assert_eq!(events[1].kind, AuditEventKind::SignIn);
    assert_eq!(events[1].sid, None, "sessions are off");
    assert!(events.iter().all(|e| e.subject == id));
    assert!(events
        .iter()
        .all(|e| e.network.as_deref() == Some("192.0.2.9")));
}
