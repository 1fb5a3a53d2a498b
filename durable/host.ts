/**
 * What every part of a user's object shares: its rows, its settings, whose
 * object it is, and the way to reach other users' objects. The object builds
 * one Host and hands it, with the few other parts each one uses, to every part.
 */
import type { PresenceConfig } from "../src/presence/config";
import { withTimeout } from "../src/presence/timers";
import type { UserStore } from "./store";
import type { UserPresence } from "./user-presence";

/** Another user's object, as this one calls it (native RPC). */
export type UserStub = DurableObjectStub<UserPresence>;

/** Calls to other objects go out in parallel chunks of this size. */
export const FANOUT_CHUNK = 50;

export interface Host {
  readonly store: UserStore;
  readonly config: PresenceConfig;
  /** The user this object belongs to (throws before the first call named them). */
  readonly userId: string;
  /** Another user's object. */
  stub(userId: string): UserStub;
  /**
   * A call to another user's object, bounded by RPC_TIMEOUT_MS: a friend's
   * object that hangs must not hold up this user's own replies (the call
   * itself goes on; its late result is ignored).
   */
  call<R>(userId: string, call: (stub: UserStub) => R): Promise<Awaited<R>>;
  /** Calls to other users' objects made so far by this instance (stubs handed out): what the call budget charges. */
  readonly calls: number;
  /**
   * The call budget (durable/budget.ts): milliseconds until this user may
   * cause calls again, 0 when they may now. Every call made so far is charged
   * first. Operations that would call others are refused while it is not 0;
   * publishes of presence wait (OwnPresence.publishChanges).
   */
  callWaitMs(now: number): number;
}

/**
 * Whose object this is: the name it was addressed by (`USER.getByName(userId)`),
 * which the runtime gives every entry point, alarms included. The one check
 * that it is there: an object reached by an unnamed id is a programming error.
 */
export function userIdOf(id: DurableObjectId): string {
  if (!id.name) throw new Error("UserPresence objects are addressed by user id (USER.getByName)");
  return id.name;
}

export function createHost(id: DurableObjectId, store: UserStore, config: PresenceConfig, users: DurableObjectNamespace<UserPresence>): Host {
  let calls = 0;
  const stub = (userId: string) => {
    calls++;
    return users.getByName(userId);
  };
  const budget = new CallBucket(config, () => calls);
  return {
    store,
    config,
    get userId() {
      return userIdOf(id);
    },
    get calls() {
      return calls;
    },
    stub,
    call: (userId, call) => withTimeout(Promise.resolve(call(stub(userId))), config.rpcTimeoutMs),
    callWaitMs: (now) => budget.waitMs(now),
  };
}

/**
 * A deficit token bucket over the calls made (CALL_BUDGET_PER_SECOND, burst
 * CALL_BUDGET_BURST): calls are charged after the fact, so one operation may
 * take it below zero; nothing more that calls others goes until it is back.
 * In memory: it resets when the object is evicted.
 */
class CallBucket {
  private tokens: number;
  private updatedAt = 0;
  private charged = 0;

  constructor(
    private readonly config: PresenceConfig,
    private readonly calls: () => number,
  ) {
    this.tokens = config.callBudgetBurst;
  }

  waitMs(now: number): number {
    const { callBudgetBurst, callBudgetPerSecond } = this.config;
    if (this.updatedAt > 0) this.tokens = Math.min(callBudgetBurst, this.tokens + (Math.max(0, now - this.updatedAt) / 1000) * callBudgetPerSecond);
    this.updatedAt = Math.max(this.updatedAt, now);
    this.tokens -= this.calls() - this.charged;
    this.charged = this.calls();
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / callBudgetPerSecond) * 1000);
  }
}
