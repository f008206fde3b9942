//! One round trip of each shared-state primitive to a real `redis-server` on loopback (started
//! by the bench in a temp dir, as the tests do): a budget reserve + settle pair (two scripts),
//! a rate-limit acquire (one script) and a PING for the floor. These are the costs the Redis
//! backend will add to a `complete()` call once it is wired in.

#[path = "../tests/support/redis_server.rs"]
mod redis_server;
#[path = "../tests/support/temp_dir.rs"]
mod temp_dir;

use std::hint::black_box;
use std::time::Duration;

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use prompt_config::state::budget::{BudgetWindow, Period, ReserveOutcome};
use prompt_config::state::rate::RateLimit;
use redis_server::RedisServer;

fn state(c: &mut Criterion) {
    let server = RedisServer::start();
    let state = server.state();
    let window = BudgetWindow::new("feature:bench", Period::Day, Utc::now());
    let mut group = c.benchmark_group("state");
    group.bench_function("ping", |b| b.iter(|| state.ping().unwrap()));
    group.bench_function("budget_reserve_settle", |b| {
        b.iter(|| {
            let outcome = state
                .reserve(&window, None, 10_000, 0, Duration::from_secs(60))
                .unwrap();
            let ReserveOutcome::Reserved { reservation, .. } = outcome else {
                panic!("no limit: always reserved")
            };
            black_box(
                state
                    .settle(&window, &reservation, 9_000, None, "bench")
                    .unwrap(),
            )
        })
    });
    let limit = RateLimit::new("provider:bench:rpm", 1_000_000_000, Duration::from_secs(60));
    group.bench_function("rate_acquire", |b| {
        b.iter(|| black_box(state.acquire(&limit, 1, 0).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, state);
criterion_main!(benches);
