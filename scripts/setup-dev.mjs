// `npm start` runs this first: creates .dev.vars from the example so a fresh clone starts with working dev secrets.
import { copyFileSync, existsSync } from "node:fs";

if (!existsSync(".dev.vars")) {
  copyFileSync(".dev.vars.example", ".dev.vars");
  console.log("created .dev.vars from .dev.vars.example (dev secrets only)");
}
