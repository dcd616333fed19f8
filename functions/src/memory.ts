// The instance's memory as log lines report it: resident set, the JavaScript heap in use (what the
// handler itself holds), and the heap after the largest full collection so far.
import { constants, PerformanceObserver } from "node:perf_hooks";

/**
 * The heap in use right after the largest of this process's full collections so far: what the process
 * really held then, as opposed to `heapUsed` at an arbitrary moment, which also counts garbage V8 has not
 * collected yet (and grows with how long a process ran rather than with what it holds). Sampled from V8's
 * own collections, so measuring it costs nothing.
 */
let liveHeapPeak = 0;
let watchingCollections = false;

function watchCollections(): void {
  if (watchingCollections) return;
  watchingCollections = true;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) {
        liveHeapPeak = Math.max(liveHeapPeak, process.memoryUsage().heapUsed);
      }
    }
  });
  observer.observe({ entryTypes: ["gc"] });
}

export function memoryFields(): { rss_mb: number; heap_mb: number; live_heap_mb: number } {
  watchCollections();
  // A process started with --expose-gc (`npm run bench:memory`) collects first, so that its heap is what
  // it holds at this moment; that costs a full collection per page, so throughput is not measured there.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (typeof gc === "function") {
    gc();
    liveHeapPeak = Math.max(liveHeapPeak, process.memoryUsage().heapUsed);
  }
  const m = process.memoryUsage();
  return {
    rss_mb: Math.round(m.rss / 1048576),
    heap_mb: Math.round(m.heapUsed / 1048576),
    live_heap_mb: Math.round(liveHeapPeak / 1048576),
  };
}
