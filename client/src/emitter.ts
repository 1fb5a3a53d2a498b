/** A tiny typed event emitter; listeners' exceptions never break the client. */
import { defer } from "./runtime.js";
// biome-ignore lint/suspicious/noExplicitAny: the constraint must accept listeners of any parameter types (unknown[] would reject them).
export class Emitter<Events extends { [K in keyof Events]: (...args: any[]) => void }> {
  private readonly listeners = new Map<keyof Events, Set<Events[keyof Events]>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(type: K, listener: Events[K]): () => void {
    let set = this.listeners.get(type);
    if (!set) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
    return () => this.off(type, listener);
  }

  once<K extends keyof Events>(type: K, listener: Events[K]): () => void {
    const off = this.on(type, ((...args: unknown[]) => {
      off();
      (listener as (...a: unknown[]) => void)(...args);
    }) as Events[K]);
    return off;
  }

  off<K extends keyof Events>(type: K, listener: Events[K]): void {
    this.listeners.get(type)?.delete(listener);
  }

  protected emit<K extends keyof Events>(type: K, ...args: Parameters<Events[K]>): void {
    for (const listener of [...(this.listeners.get(type) ?? [])]) {
      try {
        (listener as (...a: unknown[]) => void)(...args);
      } catch (error) {
        defer(() => {
          throw error;
        });
      }
    }
  }
}
