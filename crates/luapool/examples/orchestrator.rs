//! An orchestrator: Lua scripts fan out many concurrent calls to a slow API (a local
//! server standing in for an LLM) through async host functions, `llm.ask(prompt)` and
//! `llm.ask_all(prompts)`, with one semaphore capping the calls in flight.
//!
//! Run with `cargo run -p luapool --example orchestrator`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use luapool::{HostResult, Job, Module, Script, VmConfig, WorkerPool, WorkerPoolConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long the fake LLM takes to answer, and how many calls may be in flight at once.
const DELAY: Duration = Duration::from_millis(20);
const CAP: usize = 8;

/// The cap, shared by every worker, and counters of what it let through.
static PERMITS: Semaphore = Semaphore::const_new(CAP);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// The fake LLM: reads one line per connection, answers one line after `DELAY`.
async fn serve(listener: TcpListener) {
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(async move {
            let (mut socket, mut prompt) = (BufReader::new(socket), String::new());
            if socket.read_line(&mut prompt).await.is_ok() {
                tokio::time::sleep(DELAY).await;
                let answer = format!("<{}>\n", prompt.trim());
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
    }
}

/// One call to the LLM at `addr`: waits for a permit, then asks over a new connection.
async fn ask(addr: SocketAddr, prompt: String) -> HostResult<String> {
    let _permit = PERMITS.acquire().await?;
    MAX_IN_FLIGHT.fetch_max(IN_FLIGHT.fetch_add(1, SeqCst) + 1, SeqCst);
    CALLS.fetch_add(1, SeqCst);
    let (mut stream, mut answer) = (
        BufReader::new(TcpStream::connect(addr).await?),
        String::new(),
    );
    stream.write_all(format!("{prompt}\n").as_bytes()).await?;
    stream.read_line(&mut answer).await?;
    IN_FLIGHT.fetch_sub(1, SeqCst); // before the permit is released
    Ok(answer.trim().to_string())
}

/// Each job: one call for an outline, then three sections asked all at once.
const AGENT: &str = r#"
    local topic = ...
    local outline = llm.ask("outline of " .. topic)
    local sections = llm.ask_all({ "intro: " .. outline, "body: " .. outline, "end: " .. outline })
    return string.format("%s: %d sections, %d bytes", topic, #sections, #table.concat(sections))"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(serve(listener));

    // A script awaiting `llm.ask` yields: its worker runs other jobs meanwhile.
    // `ask_all` runs its calls concurrently, under the same cap.
    let ask_all =
        move |prompts: Vec<String>| try_join_all(prompts.into_iter().map(move |p| ask(addr, p)));
    let llm = Module::new("llm")
        .async_function("ask", move |prompt: String| ask(addr, prompt))
        .async_function("ask_all", ask_all);
    let vm = VmConfig::default().with_timeout(Duration::from_secs(10)); // per job
    let config = WorkerPoolConfig::default().with_workers(2).with_vm(vm);
    let pool = WorkerPool::builder(config).module(llm).build()?;

    // Many jobs at once, from one task: each is an agent making four calls.
    let (jobs, agent, start) = (25, Script::new("agent.lua", AGENT), Instant::now());
    let reports = try_join_all((0..jobs).map(|i| {
        let job = Job::exec(agent.clone()).with_args((format!("topic-{i}"),));
        pool.eval::<String>(job)
    }))
    .await?;
    let elapsed = start.elapsed();

    let (calls, max) = (CALLS.load(SeqCst), MAX_IN_FLIGHT.load(SeqCst));
    println!("{}\n...\n{}", reports[0], reports[jobs - 1]);
    let sequential = DELAY * calls as u32;
    println!("{jobs} jobs, {calls} calls of {DELAY:?}: {elapsed:.2?} ({sequential:?} one by one)");
    println!("at most {max} calls in flight (cap {CAP})");
    if max > CAP || calls != jobs * 4 {
        return Err(format!("expected {} calls, at most {CAP} at once", jobs * 4).into());
    }
    pool.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
