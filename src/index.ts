export { TpError, type ErrorCategory } from './lib/errors.js';
