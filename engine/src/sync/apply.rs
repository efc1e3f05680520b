//! Applying a plan: writes paced within the platform's budget, retried on
//! 429 and 5xx with backoff, never retried on any other refusal.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tokio::time::Instant;

use super::SyncProgress;
use crate::sink::{Applied, Batch, Change, RateBudget, Sink, SinkError, WriteLimit};

/// How failed platform calls are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first included.
    pub attempts: u32,
    /// The first backoff; doubled after every retryable failure.
    pub base_delay: Duration,
    /// The longest single wait, whatever the platform's `Retry-After` says.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(60),
        }
    }
}

/// The platform's write windows, shared by every worker of one sync: a
/// write goes out only when it fits every window, counted over the writes
/// actually sent (a sliding log, so "500 an hour" is never exceeded in any
/// hour, which a token bucket's refill would allow). A 429 pauses all
/// workers, not only the one that got it: the platform throttles the
/// caller, not the request.
pub(crate) struct Pacer {
    limits: &'static [WriteLimit],
    state: Mutex<PacerState>,
}

struct PacerState {
    /// Per limit, the send times still inside its window, oldest first.
    sent: Vec<VecDeque<Instant>>,
    paused_until: Option<Instant>,
}

impl Pacer {
    pub(crate) fn new(budget: &RateBudget) -> Self {
        Pacer {
            limits: budget.limits,
            state: Mutex::new(PacerState {
                sent: budget
                    .limits
                    .iter()
                    .map(|limit| VecDeque::with_capacity(limit.writes as usize))
                    .collect(),
                paused_until: None,
            }),
        }
    }

    /// Waits until one more write fits the budget.
    pub(super) async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock().expect("pacer lock");
                let now = Instant::now();
                let mut wait = state
                    .paused_until
                    .filter(|until| *until > now)
                    .map(|until| until - now);
                for (limit, sent) in self.limits.iter().zip(state.sent.iter_mut()) {
                    while sent.front().is_some_and(|at| *at + limit.per <= now) {
                        sent.pop_front();
                    }
                    if sent.len() >= limit.writes.max(1) as usize {
                        let free_at = sent[sent.len() - limit.writes.max(1) as usize] + limit.per;
                        wait = wait.max(Some(free_at - now));
                    }
                }
                match wait {
                    Some(wait) => wait,
                    None => {
                        for sent in &mut state.sent {
                            sent.push_back(now);
                        }
                        return;
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Holds every worker back for `delay`.
    pub(super) fn pause(&self, delay: Duration) {
        let mut state = self.state.lock().expect("pacer lock");
        let until = Instant::now() + delay;
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }
}

/// Runs `call` until it succeeds, fails for good, or runs out of attempts;
/// waits the platform's `Retry-After` on a 429 (pausing `pacer`, if any)
/// and an exponential backoff on a 5xx.
pub(crate) async fn with_retries<T, F, Fut>(
    policy: &RetryPolicy,
    pacer: Option<&Pacer>,
    mut call: F,
) -> Result<T, SinkError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SinkError>>,
{
    let mut backoff = policy.base_delay;
    let mut attempt = 1;
    loop {
        if let Some(pacer) = pacer {
            pacer.acquire().await;
        }
        match call().await {
            Err(error) if error.is_retryable() && attempt < policy.attempts => {
                let delay = match &error {
                    SinkError::RateLimited {
                        retry_after: Some(after),
                    } => *after,
                    _ => backoff,
                }
                .min(policy.max_delay);
                match pacer {
                    Some(pacer) => pacer.pause(delay),
                    None => tokio::time::sleep(delay).await,
                }
                backoff = (backoff * 2).min(policy.max_delay);
                attempt += 1;
            }
            outcome => return outcome,
        }
    }
}

/// Told of every batch's answer as it arrives, before the next batch of that
/// worker goes out: the sync checkpoints its record there, so a process
/// killed mid-apply has kept what it wrote.
#[async_trait::async_trait]
pub(super) trait Answers: Sync {
    /// `results` are the answers to the changes from index `first` on.
    async fn answered(&self, first: usize, results: &[Result<Applied, SinkError>]);
}

/// Applies `changes` through `sink`, batched per its capabilities, at most
/// `budget.max_in_flight` calls at once; one result per change, in order.
pub(super) async fn execute(
    sink: &dyn Sink,
    changes: &[Change<'_>],
    budget: &RateBudget,
    policy: &RetryPolicy,
    progress: &dyn SyncProgress,
    answers: &dyn Answers,
) -> Vec<Result<Applied, SinkError>> {
    let pacer = Pacer::new(budget);
    let answered = AtomicUsize::new(0);
    let batch_len = match sink.capabilities().batch {
        Batch::One => 1,
        Batch::All => changes.len().max(1),
    };
    let mut results: Vec<(usize, Vec<Result<Applied, SinkError>>)> =
        stream::iter(changes.chunks(batch_len).enumerate())
            .map(|(index, batch)| {
                let (pacer, answered) = (&pacer, &answered);
                async move {
                    let outcome = with_retries(policy, Some(pacer), || async {
                        let results = sink.apply(batch).await;
                        // Retry the batch only when every change in it failed
                        // retryably; a partial batch result is final.
                        match results.iter().find_map(|result| {
                            result.as_ref().err().filter(|error| error.is_retryable())
                        }) {
                            Some(error) if results.iter().all(Result::is_err) => Err(error.clone()),
                            _ => Ok(results),
                        }
                    })
                    .await;
                    let results = outcome.unwrap_or_else(|error| vec![Err(error); batch.len()]);
                    answers.answered(index * batch_len, &results).await;
                    progress
                        .written(answered.fetch_add(batch.len(), Ordering::Relaxed) + batch.len());
                    (index, results)
                }
            })
            .buffer_unordered(budget.max_in_flight.max(1))
            .collect()
            .await;
    results.sort_by_key(|(index, _)| *index);
    results
        .into_iter()
        .flat_map(|(_, results)| results)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;

    use super::*;
    use crate::sink::{Alphabet, Capabilities, Deletion, NameRules, RemoteSecret, SecretValue};

    fn fast() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(20),
        }
    }

    #[tokio::test]
    async fn retries_rate_limits_and_server_errors_then_succeeds() {
        let calls = AtomicU32::new(0);
        let result = with_retries(&fast(), None, || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 => Err(SinkError::RateLimited {
                    retry_after: Some(Duration::from_millis(5)),
                }),
                1 => Err(SinkError::Unavailable("502".into())),
                _ => Ok(7),
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn never_retries_a_refusal() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&fast(), None, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(SinkError::Rejected("422".into()))
        })
        .await;
        assert!(matches!(result, Err(SinkError::Rejected(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn gives_up_after_the_last_attempt() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retries(&fast(), None, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(SinkError::Unavailable("503".into()))
        })
        .await;
        assert!(matches!(result, Err(SinkError::Unavailable(_))));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_fills_a_window_then_waits_for_it_to_slide() {
        static TWO_A_SECOND: [WriteLimit; 1] = [WriteLimit::per_second(2)];
        let pacer = Pacer::new(&RateBudget {
            max_in_flight: 1,
            limits: &TWO_A_SECOND,
        });
        let start = Instant::now();
        for _ in 0..5 {
            pacer.acquire().await;
        }
        // Two at once, two when the first second is over, one more after.
        assert_eq!(start.elapsed().as_secs(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn every_window_is_respected() {
        // GitHub's shape: a short window and a long one.
        static SHORT_AND_LONG: [WriteLimit; 2] = [
            WriteLimit::per_second(3),
            WriteLimit {
                writes: 4,
                per: Duration::from_secs(10),
            },
        ];
        let pacer = Pacer::new(&RateBudget {
            max_in_flight: 1,
            limits: &SHORT_AND_LONG,
        });
        let start = Instant::now();
        let mut sent_at = Vec::new();
        for _ in 0..6 {
            pacer.acquire().await;
            sent_at.push(start.elapsed().as_secs());
        }
        // Three in the first second, the fourth when that second is over,
        // then the ten-second window is full until the first write leaves it.
        assert_eq!(sent_at, [0, 0, 0, 1, 10, 10]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_caller() {
        let pacer = Pacer::new(&RateBudget::unpaced(4));
        pacer.pause(Duration::from_secs(3));
        let start = Instant::now();
        pacer.acquire().await;
        assert_eq!(start.elapsed().as_secs(), 3);
    }

    /// A sink that accepts every write, taking `Batch::All` or one a call.
    struct Accepting(Capabilities);

    #[async_trait::async_trait]
    impl Sink for Accepting {
        fn capabilities(&self) -> &Capabilities {
            &self.0
        }
        fn target(&self) -> String {
            "accepting".into()
        }
        fn map_name(&self, key: &str) -> String {
            key.to_owned()
        }
        async fn inventory(&self) -> Result<Vec<RemoteSecret>, SinkError> {
            Ok(Vec::new())
        }
        async fn read(&self, _: &str) -> Result<Option<SecretValue>, SinkError> {
            Ok(None)
        }
        async fn apply_one(&self, change: &Change<'_>) -> Result<Applied, SinkError> {
            match change.name() {
                "REFUSED" => Err(SinkError::Rejected("no".into())),
                _ => Ok(Applied { revision: None }),
            }
        }
    }

    /// Records every count it is told, and every answer's first index and
    /// length.
    #[derive(Default)]
    struct Counts(Mutex<Vec<usize>>, Mutex<Vec<(usize, usize)>>);

    impl SyncProgress for Counts {
        fn written(&self, done: usize) {
            self.0.lock().unwrap().push(done);
        }
    }

    #[async_trait::async_trait]
    impl Answers for Counts {
        async fn answered(&self, first: usize, results: &[Result<Applied, SinkError>]) {
            self.1.lock().unwrap().push((first, results.len()));
        }
    }

    #[tokio::test]
    async fn every_answer_is_heard_and_advances_the_count_to_the_total() {
        let names = ["A", "REFUSED", "C", "D", "E"];
        let changes: Vec<Change<'_>> = names.iter().map(|name| Change::Delete { name }).collect();
        let one_by_one = vec![(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)];
        for (batch, expected, heard) in [
            (Batch::One, vec![1, 2, 3, 4, 5], one_by_one),
            (Batch::All, vec![5], vec![(0, 5)]),
        ] {
            let sink = Accepting(Capabilities {
                readable: true,
                names: NameRules {
                    max_len: 64,
                    alphabet: Alphabet::AsciiAlphanumericAnd("_"),
                    leading_digit: true,
                    reserved_prefixes: &[],
                    case_insensitive: false,
                    refuses_arn_suffix: false,
                },
                max_value_bytes: 64,
                max_secrets: None,
                text_only: true,
                empty_values: true,
                tags: false,
                deletion: Deletion::Immediate,
                batch,
                rate: RateBudget::unpaced(1),
            });
            let counts = Counts::default();
            let results = execute(
                &sink,
                &changes,
                &RateBudget::unpaced(1),
                &fast(),
                &counts,
                &counts,
            )
            .await;
            // A refusal is an answer too: the count reaches the total.
            assert_eq!(results.iter().filter(|result| result.is_err()).count(), 1);
            assert_eq!(*counts.0.lock().unwrap(), expected, "{batch:?}");
            assert_eq!(*counts.1.lock().unwrap(), heard, "{batch:?}");
        }
    }
}
