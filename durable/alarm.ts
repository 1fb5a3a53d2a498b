/**
 * The one physical alarm of a user's object (a Durable Object has one). The
 * object's parts each report their next wake-up (`wakeUps`, in
 * user-presence.ts); this sets the alarm to the earliest, and only when that
 * is earlier than the alarm already set (or none is): a `setAlarm` is a row
 * written, and a heartbeat moves the TTL later every time. An alarm that fires
 * early finds nothing due and is set again to the real deadline, about once
 * per TTL while the user is online.
 */
import { alarmTime, nextDeadline } from "../src/presence/timers";
import type { ObjectMeter } from "./meter";

export class Alarm {
  /** The alarm as this instance set it or read it (undefined: not read yet since the wake). */
  private at: number | null | undefined;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly meter: ObjectMeter,
    private readonly wakeUps: () => Array<number | null>,
  ) {}

  /** Sets (or deletes) the alarm for the parts' earliest wake-up. */
  async schedule(now: number): Promise<void> {
    const deadline = nextDeadline(this.wakeUps());
    if (this.at === undefined) this.at = await this.storage.getAlarm();
    if (deadline === null) {
      if (this.at === null) return;
      this.at = null;
      this.meter.alarmDeleted();
      await this.storage.deleteAlarm();
      return;
    }
    const at = alarmTime(deadline, now);
    if (this.at !== null && this.at <= at && this.at > now) return;
    this.at = at;
    this.meter.alarmSet();
    await this.storage.setAlarm(at);
  }

  /**
   * The alarm fires no later than `at`. Synchronous on purpose: called right
   * after an outbox row is written, with no await in between, so the row and
   * the alarm are committed together (a crash cannot keep one without the other).
   */
  armBy(at: number): void {
    const now = Date.now();
    if (this.at != null && this.at > now && this.at <= at) return;
    this.at = alarmTime(nextDeadline([at, ...this.wakeUps()]) ?? at, now);
    this.meter.alarmSet();
    this.storage.setAlarm(this.at).catch((error) => console.error("setAlarm failed", error));
  }

  /** The alarm that fired is gone; the refresh that follows sets the next one. */
  fired(): void {
    this.at = null;
  }
}
