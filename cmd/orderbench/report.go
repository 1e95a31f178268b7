package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// mib formats bytes in MiB.
func mib(bytes int64) string { return fmt.Sprintf("%.1f MiB", float64(bytes)/(1<<20)) }

// ms formats d in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

// secs formats d in seconds.
func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

// printResult prints one store's figures as a readable table.
func printResult(w io.Writer, r result) {
	fmt.Fprintf(w, "\n-- %s results --\n", r.store)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, args...)...) }
	row("start", "ready (/readyz 200) %s after exec, on a fresh database (includes migrations)", secs(r.ready))
	row("idle", "RSS %s, %s after ready", mib(r.idleRSS), idleWait)
	if r.stock > 0 {
		row("stock", "%d records inserted in %s after the migrations, before the preload; no statistics yet", r.stock, secs(r.stockSeeded))
	}
	row("preload", "%d events into %d partitions in %s (%.0f ev/s)", r.events, r.partitions, secs(r.preload), float64(r.events)/r.preload.Seconds())
	row("throughput", "%.0f ev/s: %d events drained %s after ready (%.0f ev/s, %s from exec)",
		r.throughput, r.events, secs(r.drainFromReady), r.throughputStart, secs(r.drainFromStart))
	row("cpu", "while draining: %s", r.drainCPU)
	row("transactions", "while draining: %s", r.drainTx)
	row("i/o", "while draining: %s", r.drainIO)
	row("memory", "peak RSS %s: VmHWM %s at the end, %s when the backlog was drained; largest VmRSS sampled every %s %s",
		mib(r.peak()), mib(r.peakRSS), mib(r.hwmAfterDrain), rssPoll, mib(r.peakSampledRSS))
	row("latency", "at %d/s: %s", r.latencyRate, r.latency)
	row("", "produce → offset commit seen; resolution: committed offsets polled every %s on average", ms(r.latency.resolution))
	for _, t := range r.latency.timeline {
		row("", "produced from %s: %d records, p50 %s, p99 %s, max %s", secs(t.from), t.count, ms(t.p50), ms(t.p99), ms(t.max))
	}
	row("", "its transactions (the service's /metrics): %s", r.latencyTx)
	row("", "its i/o: %s", r.latencyIO)
	if float64(r.latencyRate) > r.throughput {
		row("", "NOTE: %d/s is above the drained throughput, so these latencies are mostly queueing", r.latencyRate)
	}
	row("database", "%d orders, %d in status processing: every produced event is an order; %d items reserved stock", r.orders, r.processing, r.reservedItems)
	row("DLQ", "%d records%s", r.dlq, dlqNote(r.dlq))
	row("error log", "%d lines in the service's LOG_FILE", r.errorLogLines)
	row("bare consumer", "%.0f ev/s: %d events %s after its first record (%s after client start)",
		r.bare.throughput, r.bare.records, secs(r.bare.fromFirst), secs(r.bare.fromStart))
	row("orderd/bare", "%.1f %%", r.percentOfBare())
	row("latency floor", "a bare consumer committing after every poll, at %d/s on a fresh topic: %s", r.latencyRate, r.floor)
	_ = tw.Flush()
}

// String formats the percentiles for printResult.
func (f latencyFigures) String() string {
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %s over %d records (%d never seen committed)",
		ms(f.p50), ms(f.p90), ms(f.p99), ms(f.max), f.samples, f.unseen)
}

// dlqNote explains a non-empty DLQ: generated events are all valid.
func dlqNote(n int64) string {
	if n == 0 {
		return ""
	}
	return " — UNEXPECTED: the generated events are valid, and their products have no stock record or more stock than any run orders"
}

// printMarkdown prints every store's headline figures as a markdown table.
func printMarkdown(w io.Writer, o options, rs []result) {
	fmt.Fprintf(w, "\n| store | events | partitions | throughput ev/s | %% of bare consumer | p50 / p99 ms at %d/s | bare consumer's p50 / p99 ms | peak RSS MiB | idle RSS MiB | ready s |\n", o.rate)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	msf := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.1f | %.1f / %.1f | %.1f / %.1f | %.1f | %.1f | %.2f |\n",
			r.store, r.events, r.partitions, r.throughput, r.percentOfBare(),
			msf(r.latency.p50), msf(r.latency.p99), msf(r.floor.p50), msf(r.floor.p99),
			float64(r.peak())/(1<<20), float64(r.idleRSS)/(1<<20), r.ready.Seconds())
	}
}
