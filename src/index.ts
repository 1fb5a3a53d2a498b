import { app } from "./app";

export { UserPresence } from "../durable/user-presence";
export default app;
