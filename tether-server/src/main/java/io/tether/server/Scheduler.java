package io.tether.server;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import io.tether.engine.ConfigException;
import io.tether.generate.ContinuousBatch;
import io.tether.generate.Generator.FinishReason;
import io.tether.generate.SamplingConfig;
import io.tether.model.CausalLM;
import io.tether.text.Tokenizer;

/**
 * The one thread that touches the model: takes requests from a bounded queue into a {@link ContinuousBatch}
 * (up to {@code maxBatch} rows; a request's n choices join together), runs decode steps, turns each row's tokens
 * into text deltas (holding back what could still become a stop string or an incomplete UTF-8 character) and
 * hands them to the request's event queue, which the HTTP thread drains. Requests join and leave between decode
 * steps.
 */
final class Scheduler implements AutoCloseable {
    /** What the HTTP thread of a request receives. */
    sealed interface Event permits Delta, Failed, Done {}

    /** New text of choice {@code choice}, the tokens generated since the last delta, and its finish reason once done. */
    record Delta(int choice, String text, List<ContinuousBatch.Token> tokens, String finishReason) implements Event {}

    record Failed(ApiError error) implements Event {}

    record Done(int promptTokens, int completionTokens) implements Event {}

    /** One HTTP request in flight. */
    static final class Job {
        final Requests.Parsed request;
        final long deadline;   // System.nanoTime()
        final BlockingQueue<Event> events = new LinkedBlockingQueue<>();
        volatile boolean cancelled;   // the client went away
        // Owned by the scheduler thread:
        ContinuousBatch.Row[] rows;
        int[] emitted, seen;
        boolean[] reported;

        Job(Requests.Parsed request, long deadline) {
            this.request = request;
            this.deadline = deadline;
        }
    }

    private final CausalLM model;
    private final Tokenizer tokenizer;
    private final List<Long> stopIds;
    private final int maxBatch;
    private final double timeoutSeconds;
    private final ArrayBlockingQueue<Job> pending;
    private final List<Job> active = new ArrayList<>();
    private final Thread thread;
    private volatile boolean stopping, killed;
    private ContinuousBatch batch;
    /** For tests and the bench: the most rows one decode step ran, and rows that joined a batch already running. */
    volatile int maxRows, joinedRunning, abandoned;

    Scheduler(CausalLM model, Tokenizer tokenizer, List<Long> stopIds, int maxBatch, int queue, double timeoutSeconds) {
        this.model = model;
        this.tokenizer = tokenizer;
        this.stopIds = List.copyOf(stopIds);
        this.maxBatch = maxBatch;
        this.timeoutSeconds = timeoutSeconds;
        this.pending = new ArrayBlockingQueue<>(queue);
        this.batch = new ContinuousBatch(model);
        this.thread = new Thread(this::run, "tether-scheduler");
        thread.setDaemon(true);
        thread.start();
    }

    /** Queues a request; 429 when the queue is full, 503 once shutdown began. */
    Job submit(Requests.Parsed request) {
        if (stopping) throw new ApiError(503, "The server is shutting down.", "server_error", null, "shutting_down");
        Job job = new Job(request, System.nanoTime() + (long) (timeoutSeconds * 1e9));
        if (!pending.offer(job))
            throw new ApiError(429, "Too many requests are waiting (queue of " + pending.remainingCapacity() + pending.size()
                    + "); retry later.", "rate_limit_exceeded", null, "rate_limit_exceeded");
        return job;
    }

    ApiError timeout() {
        return new ApiError(504, "The request did not finish within the server's timeout of " + timeoutSeconds + " s.", "timeout", null, "timeout");
    }

    private void run() {
        while (true) {
            try {
                if (killed || (stopping && pending.isEmpty() && active.isEmpty())) break;
                long now = System.nanoTime();
                for (Iterator<Job> it = pending.iterator(); it.hasNext(); ) {
                    Job j = it.next();
                    if (j.cancelled || now - j.deadline > 0) {
                        it.remove();
                        if (!j.cancelled) j.events.add(new Failed(timeout()));
                    }
                }
                for (Iterator<Job> it = active.iterator(); it.hasNext(); ) {
                    Job j = it.next();
                    if (j.cancelled || now - j.deadline > 0) {
                        for (ContinuousBatch.Row r : j.rows) r.cancel();
                        if (j.cancelled) abandoned++;
                        it.remove();
                        if (!j.cancelled) j.events.add(new Failed(timeout()));
                    }
                }
                admit(null);
                if (batch.size() == 0) {
                    Job j = pending.poll(50, TimeUnit.MILLISECONDS);
                    if (j != null) admit(j);
                    continue;
                }
                maxRows = Math.max(maxRows, batch.live());
                batch.step();   // rows update in place; their jobs read them below
                for (Iterator<Job> it = active.iterator(); it.hasNext(); ) {
                    Job j = it.next();
                    if (report(j)) it.remove();
                }
            } catch (InterruptedException e) {
                // close() interrupts only to stop waiting; the loop's checks decide what happens next.
            } catch (Throwable t) {
                // A bug must not take the server down or leave clients waiting: every request in flight fails with
                // a plain 500 (no stack trace to the client), the batch starts afresh.
                System.err.println("tether serve: generation failed: " + t);
                t.printStackTrace();
                ApiError e = new ApiError(500, "Generation failed inside the server.", "server_error", null, null);
                for (Job j : active) j.events.add(new Failed(e));
                active.clear();
                batch.close();
                batch = new ContinuousBatch(model);
            }
        }
        batch.close();
    }

    /** Moves queued requests into the batch while their choices fit; they are prefilled together. */
    private void admit(Job first) {
        List<Job> jobs = new ArrayList<>();
        int live = batch.live();
        if (first != null && !first.cancelled) {
            jobs.add(first);
            live += first.request.n();
        }
        while (true) {
            Job j = pending.peek();
            if (j == null || (live > 0 && live + j.request.n() > maxBatch)) break;
            pending.poll();
            if (j.cancelled) continue;
            jobs.add(j);
            live += j.request.n();
        }
        if (!jobs.isEmpty()) start(jobs);
    }

    private void start(List<Job> jobs) {
        List<long[]> prompts = new ArrayList<>();
        List<SamplingConfig> configs = new ArrayList<>();
        List<Integer> tops = new ArrayList<>();
        for (Job j : jobs) {
            Requests.Parsed p = j.request;
            j.rows = new ContinuousBatch.Row[p.n()];
            j.emitted = new int[p.n()];
            j.seen = new int[p.n()];
            j.reported = new boolean[p.n()];
            for (int i = 0; i < p.n(); i++) {
                // Choice i samples with seed + i: a seeded request is reproducible choice by choice.
                prompts.add(p.prompt());
                configs.add(new SamplingConfig(p.maxTokens(), p.temperature(), 0, p.topP(), p.seed() + i, stopIds, List.of(), true));
                tops.add(p.topLogprobs());
            }
        }
        if (batch.live() > 0) joinedRunning += prompts.size();
        List<ContinuousBatch.Row> rows;
        try {
            rows = batch.join(prompts, configs, tops);
        } catch (ConfigException e) {
            if (jobs.size() > 1) {   // one bad request must not fail the others that arrived with it
                for (Job j : jobs) start(List.of(j));
                return;
            }
            Job j = jobs.get(0);
            j.events.add(new Failed(ApiError.invalid(j.request.chat() ? "messages" : "prompt", e.getMessage())));
            return;
        }
        int k = 0;
        for (Job j : jobs) {
            for (int i = 0; i < j.rows.length; i++) j.rows[i] = rows.get(k++);
            if (!report(j)) active.add(j);
        }
    }

    /** Sends each choice's new text; true when the job is complete (Done sent). */
    private boolean report(Job j) {
        boolean all = true;
        List<String> stops = j.request.stop();
        int hold = 0;
        for (String s : stops) hold = Math.max(hold, s.length() - 1);
        int completion = 0;
        for (int i = 0; i < j.rows.length; i++) {
            ContinuousBatch.Row row = j.rows[i];
            completion += row.tokens().size();
            if (j.reported[i]) continue;
            List<ContinuousBatch.Token> fresh = List.copyOf(row.tokens().subList(j.seen[i], row.tokens().size()));
            if (fresh.isEmpty() && !row.done()) {
                all = false;
                continue;
            }
            j.seen[i] = row.tokens().size();
            String text = tokenizer.decode(row.tokenIds(), true);
            boolean stopHit = false;
            for (String s : stops) {
                int at = text.indexOf(s, Math.max(0, j.emitted[i] - s.length()));
                if (at >= 0) {
                    text = text.substring(0, at);   // OpenAI leaves the stop sequence out of the text
                    row.stop(FinishReason.STOP_STRING);
                    stopHit = true;
                }
            }
            boolean done = row.finishReason() != null;
            int safe = text.length();
            if (!done) {
                safe = Math.max(j.emitted[i], text.length() - hold);
                while (safe > j.emitted[i] && text.charAt(safe - 1) == '\uFFFD') safe--;   // an unfinished UTF-8 sequence
                if (safe > j.emitted[i] && Character.isHighSurrogate(text.charAt(safe - 1))) safe--;
            }
            String delta = safe > j.emitted[i] ? text.substring(j.emitted[i], safe) : "";
            j.emitted[i] = Math.max(j.emitted[i], safe);
            List<ContinuousBatch.Token> shown = new ArrayList<>();
            for (ContinuousBatch.Token t : fresh) if (!stopIds.contains(t.id())) shown.add(t);   // the end-of-text token is not content
            String finish = done ? (row.finishReason() == FinishReason.LENGTH && !stopHit ? "length" : "stop") : null;
            if (!delta.isEmpty() || !shown.isEmpty() || finish != null) j.events.add(new Delta(i, delta, shown, finish));
            if (done) j.reported[i] = true;
            else all = false;
        }
        if (all) j.events.add(new Done(j.request.prompt().length, completion));
        return all;
    }

    /** Finishes every queued and running request, then stops; new requests get 503 meanwhile. */
    void drain(long timeoutMillis) throws InterruptedException {
        stopping = true;
        thread.join(timeoutMillis);
    }

    /** Requests waiting for a batch slot. */
    int queued() {
        return pending.size();
    }

    @Override
    public void close() {
        stopping = true;
        killed = true;
        thread.interrupt();
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
