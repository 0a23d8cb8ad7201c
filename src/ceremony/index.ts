/** Key ceremonies: plans, officer quorum, execution and the signed transcript. */
export * from './ceremony-runner.js';
export * from './exclusive-file.js';
export * from './plan.js';
export * from './quorum.js';
export * from './share-file.js';
export * from './transcript.js';
