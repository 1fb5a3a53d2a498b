import { app } from "./app";

export { RealmCounter } from "../durable/realm-counter";
export { RealmShard } from "../durable/realm-shard";
export { UserPresence } from "../durable/user-presence";
export default app;
