export {
  commitFiles,
  createRepo,
  type GitHttpServer,
  git,
  type RepoFile,
  startGitHttpServer,
  type TestRepo,
  tag,
} from './git-server.js';
export { lateBound, useRedis } from './hooks.js';
export { nvidiaSmiStandIn, STAND_IN_GPU } from './nvidia-smi.js';
export { freePort } from './ports.js';
export { startRedis, type TestRedis } from './redis-server.js';
export { waitFor } from './wait.js';
