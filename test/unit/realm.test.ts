import { describe, expect, it } from "vitest";
import { batchSendAt, hash32, memberRealm, parseShardName, renewAt, shardName, shardOf } from "../../src/presence/realm";

describe("realm population rules", () => {
  it("a user's shard is stable and in range; 10,000 users spread evenly over 16 shards", () => {
    expect(shardOf("alice", 16)).toBe(shardOf("alice", 16));
    const counts = new Array(16).fill(0);
    for (let i = 0; i < 10_000; i++) counts[shardOf(`user-${i}`, 16)]++;
    for (const n of counts) expect(n).toBeGreaterThan(625 * 0.8);
    for (const n of counts) expect(n).toBeLessThan(625 * 1.2);
    expect(shardOf("x", 0)).toBe(0);
    expect(hash32("")).toBe(0x811c9dc5);
  });

  it("shard names round-trip, whatever the realm contains", () => {
    for (const realm of ["lobby", "a#b", "#", "x#12"]) expect(parseShardName(shardName(realm, 7))).toEqual({ realm, shard: 7 });
    expect(parseShardName("lobby")).toBeNull();
    expect(parseShardName("lobby#x")).toBeNull();
    expect(parseShardName("#3")).toBeNull();
  });

  it("only visible users who share their realm are members", () => {
    expect(memberRealm({ status: "online", realm: "forest" })).toBe("forest");
    expect(memberRealm({ status: "away", realm: "forest" })).toBe("forest");
    expect(memberRealm({ status: "busy", realm: "forest" })).toBe("forest");
    // invisible users are offline in the outward view; shareLocation none makes the outward realm null
    expect(memberRealm({ status: "offline", realm: null })).toBeNull();
    expect(memberRealm({ status: "offline", realm: "forest" })).toBeNull();
    expect(memberRealm({ status: "online", realm: null })).toBeNull();
    expect(memberRealm({ status: "unknown", realm: "forest" })).toBeNull();
  });

  it("leases renew at half-life; batches go out at most once per interval", () => {
    expect(renewAt(1_000, 600_000)).toBe(301_000);
    expect(batchSendAt(null, 5_000, 1_000)).toBe(5_000);
    expect(batchSendAt(3_000, 5_000, 1_000)).toBe(5_000);
    expect(batchSendAt(4_500, 5_000, 1_000)).toBe(5_500);
  });
});
