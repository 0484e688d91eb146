export * from "./generated/api-types.js";
