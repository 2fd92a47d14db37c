// ES module entry point: re-exports the CommonJS build.
export * from './index.js';
