// ES module entry point: re-exports the CommonJS build, with the whole
// module as the default export as Node's own modules have.
import cjs from './index.js';

export * from './index.js';
export default cjs;
