// How a gateway of a fleet reports a placement the moment it is made, with
// no fast tick waiting for it. The worker VM that polls the control plane
// registers the shared queue "prefix_router.report_wake"; a worker VM whose
// request placed a prefix enqueues one byte there, and the host calls the
// poller's root context back (proxy_on_queue_ready, posted to the poller's
// own thread) to send the report. The queue stays short: a VM that does not
// poll enqueues only when its placements found the gateway's outbox empty
// (if not, the poller already owes a report that will carry them), and the
// poller wakes itself once until that wake is delivered. With nobody
// registered yet (before the first lease), nothing is enqueued and the
// poller's ticks report as before.
import { HostBytes, WasmResult, dequeueShared, enqueueShared, registerQueue, resolveQueue } from "../abi/hostCalls";

const QUEUE = String.UTF8.encode("prefix_router.report_wake");
/** The one byte a wake carries: the queue's items say only that there is news. */
const ITEM: usize = memory.data(1);

@unmanaged
@final
export class ReportWake {
  /** The queue's token: this VM's registration, or the one resolved to wake the poller; 0 for none. */
  private token: u32 = 0;
  /** This VM registered the queue (it polls) and its wakes reach this root context. */
  registered: bool = false;
  /** The poller sent itself a wake not yet delivered. */
  private selfWoken: bool = false;
  private readonly bytes: HostBytes = new HostBytes();

  /** Takes the queue's deliveries for this VM (it holds the poll lease): a later registrant takes them from it. */
  register(): void {
    const token = registerQueue(QUEUE);
    this.registered = token != 0;
    this.token = token;
    this.selfWoken = false;
  }

  /** Another VM holds the lease now, or soon will: this one wakes it like any other VM. */
  unregistered(): void {
    this.registered = false;
    this.selfWoken = false;
  }

  /** Whether `token` is this VM's registration (a delivery to act on). */
  @inline owns(token: u32): bool {
    return this.registered && token == this.token;
  }

  /** Wakes the poller; false when no poller has registered (its ticks will find the news). */
  wake(): bool {
    if (this.token == 0) this.token = resolveQueue(QUEUE);
    if (this.token == 0) return false;
    if (enqueueShared(this.token, ITEM, 1) == WasmResult.Ok) return true;
    // The queue went with its vm_id's last VM: resolve it again next time.
    this.token = 0;
    return false;
  }

  /** The poller wakes itself after its own request placed: once until the wake is delivered. */
  wakeSelf(): void {
    if (this.selfWoken || !this.registered) return;
    this.selfWoken = this.wake();
  }

  /** Empties the queue (the poller, on delivery): one report answers every wake. */
  drain(): void {
    this.selfWoken = false;
    if (!this.registered) return;
    const b = this.bytes;
    while (dequeueShared(this.token, b) == WasmResult.Ok) b.free();
    b.free();
  }
}
