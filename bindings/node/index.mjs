// vsync-s3-client for ES modules: the CommonJS module (index.js) re-exported,
// so `import` and `require` share one addon and one set of error classes.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const vsync = require('./index.js');

export const {
  open,
  openWith,
  fromPayload,
  Vault,
  VSyncError,
  ConfigMissingError,
  ConfigUnsupportedVersionError,
  S3UnreachableError,
  ManifestNotFoundError,
  WrongPassphraseError,
  BundleCorruptError,
  UnsupportedSpecVersionError,
} = vsync;

export default vsync;
