import { describe, expect, it } from "vitest";
import { combinedInterest, wantsPosition } from "../../src/presence/interest";

describe("position interest", () => {
  it("the widest subscribed client wins; none named means all; no client yet means all", () => {
    expect(combinedInterest([])).toBe("all");
    expect(combinedInterest(["none"])).toBe("none");
    expect(combinedInterest(["none", "realm"])).toBe("realm");
    expect(combinedInterest(["realm", undefined])).toBe("all");
    expect(combinedInterest(["realm", "realm"])).toBe("realm");
  });

  it("position-only moves go to all, to the same realm, or to nobody; an unknown realm gets them", () => {
    expect(wantsPosition("all", "x", "y")).toBe(true);
    expect(wantsPosition(null, "x", "y")).toBe(true);
    expect(wantsPosition("none", "x", "x")).toBe(false);
    expect(wantsPosition("realm", "x", "x")).toBe(true);
    expect(wantsPosition("realm", "x", "y")).toBe(false);
    expect(wantsPosition("realm", null, "y")).toBe(true);
    expect(wantsPosition("realm", undefined, "y")).toBe(true);
  });
});
