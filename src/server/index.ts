/** The gRPC broker: transport, peer identity, handlers, status mapping. */
export * from './broker.js';
export * from './broker-metrics.js';
export * from './broker-service.js';
export * from './grpc-server.js';
export * from './grpc-status.js';
export * from './join-token.js';
export * from './metrics-listener.js';
export * from './rotation-coverage.js';
export * from './peer-verifier.js';
export * from './server-identity.js';
export * from './rate-limiter.js';
export * from './open-store.js';
export * from './revocation-poller.js';
export { rotationProgress, type RotationProgress } from './rotation-service.js';
