// Types of vsync-s3-client for `import`: the same as for `require`.
import vsync = require('./index.js');

export * from './index.js';
export default vsync;
