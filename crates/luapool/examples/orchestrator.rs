//! An orchestrator: Lua scripts fan out many concurrent calls to a slow API (a local
//! server standing in for an LLM) through async host functions, `llm.ask(prompt)` and
//! `llm.ask_all(prompts)`, with one semaphore capping the calls in flight.
//!
//! Run with `cargo run -p luapool --example orchestrator`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::try_join_all;
use luapool::{Job, Module, Script, WorkerPool, WorkerPoolConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How long the fake LLM takes to answer, and how many calls may be in flight at once.
const DELAY: Duration = Duration::from_millis(20);
const CAP: usize = 8;

/// The fake LLM: reads one line per connection, answers one line after `DELAY`.
async fn serve(listener: TcpListener) {
    while let Ok((socket, _)) = listener.accept().await {
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut prompt = String::new();
            if BufReader::new(read).read_line(&mut prompt).await.is_ok() {
                tokio::time::sleep(DELAY).await;
                let answer = format!("<{}>\n", prompt.trim());
                let _ = write.write_all(answer.as_bytes()).await;
            }
        });
    }
}

/// The client side: the concurrency cap, and counters of what it let through.
struct Llm {
    addr: SocketAddr,
    permits: Semaphore,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    calls: AtomicUsize,
}

impl Llm {
    /// One call: waits for a permit, then asks the server over a new connection.
    async fn ask(&self, prompt: String) -> std::io::Result<String> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(std::io::Error::other)?;
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        self.calls.fetch_add(1, Ordering::SeqCst);
        let answer = async {
            let mut stream = TcpStream::connect(self.addr).await?;
            stream.write_all(format!("{prompt}\n").as_bytes()).await?;
            let mut answer = String::new();
            BufReader::new(stream).read_line(&mut answer).await?;
            Ok(answer.trim().to_string())
        };
        let answer = answer.await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst); // before the permit is released
        answer
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let llm = Arc::new(Llm {
        addr: listener.local_addr()?,
        permits: Semaphore::new(CAP),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        calls: AtomicUsize::new(0),
    });
    tokio::spawn(serve(listener));

    // A script awaiting `llm.ask` yields; its worker runs other jobs meanwhile.
    let (one, all) = (llm.clone(), llm.clone());
    let module = Module::new("llm")
        .async_function("ask", move |prompt: String| {
            let llm = one.clone();
            async move { Ok(llm.ask(prompt).await?) }
        })
        .async_function("ask_all", move |prompts: Vec<String>| {
            let llm = all.clone(); // the calls run concurrently, under the same cap
            async move { Ok(try_join_all(prompts.into_iter().map(|p| llm.ask(p))).await?) }
        });
    let config = WorkerPoolConfig::default().with_workers(2);
    let pool = WorkerPool::builder(config).module(module).build()?;

    // Each job: one call for an outline, then three sections asked all at once.
    let agent = Script::new(
        "agent.lua",
        r#"
        local topic = ...
        local outline = llm.ask("outline of " .. topic)
        local sections = llm.ask_all({ "intro: " .. outline, "body: " .. outline, "end: " .. outline })
        return string.format("%s: %d sections, %d bytes", topic, #sections, #table.concat(sections))"#,
    );
    let jobs = 25;
    let start = Instant::now();
    let reports: Vec<String> = try_join_all((0..jobs).map(|i| {
        let job = Job::exec(agent.clone()).with_args((format!("topic-{i}"),));
        pool.eval::<String>(job.with_timeout(Duration::from_secs(10)))
    }))
    .await?;
    let elapsed = start.elapsed();

    let (calls, max) = (
        llm.calls.load(Ordering::SeqCst),
        llm.max_in_flight.load(Ordering::SeqCst),
    );
    println!("{}\n...\n{}", reports[0], reports[jobs - 1]);
    println!(
        "{jobs} jobs made {calls} calls of {DELAY:?}: {elapsed:?} in all, {:?} in sequence",
        DELAY * calls as u32
    );
    println!("at most {max} calls in flight (cap {CAP})");
    if max > CAP || calls != jobs * 4 {
        return Err(format!("expected {} calls, at most {CAP} at once", jobs * 4).into());
    }
    pool.shutdown(Duration::from_secs(1)).await;
    Ok(())
}
