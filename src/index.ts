/**
 * The credbroker library entry point: the core types every module shares, and the client API for
 * services that embed credbroker instead of running `credbroker agent`:
 *
 * - {@link ServiceCredentials}: enroll with a join token, keep the certificate renewed (pushed
 *   renewals over Rotation/Watch included), hot-swap it into grpc-js and node tls/https, fetch
 *   and cache access tokens, verify the broker's tokens;
 * - {@link ServiceIdentity}, {@link AgentCore} and its events and status, for services that
 *   want the loop without the TLS helpers;
 * - {@link TokenVerifier} and {@link JwksCache} for services that only consume tokens.
 */
export * from './core/index.js';
export {
  ServiceCredentials,
  spiffeIdCheck,
  type ServiceCredentialsOptions,
  type TokenOptions,
  type ChannelCheckOptions,
} from './agent/service-credentials.js';
export { ServiceIdentity, joinPem, type IdentityPems, type IssuedCertificate } from './agent/service-identity.js';
export {
  AgentCore,
  type AgentCoreOptions,
  type AgentEvents,
  type AgentStatus,
  type AgentCounters,
  type AgentState,
  type AgentStage,
  type IdentityChange,
  type OnceOutcome,
} from './agent/agent-core.js';
export { DEFAULT_RENEWAL_TIMING, type RenewalTiming } from './agent/renewal-plan.js';
export { SERVICE_KEY_TYPES, newKeyAndCsr, type ServiceKeyType, type CsrNames } from './agent/enroll.js';
export { fileJoinToken, fdJoinToken, secretJoinToken, type JoinTokenSource } from './agent/join-token-source.js';
export { GrpcBrokerTransport, type BrokerTransport, type GrpcBrokerTransportOptions, type TokenRequest, type IssuedToken } from './agent/broker-transport.js';
export { IdentityCertificateProvider } from './agent/identity-certificate-provider.js';
export { TokenVerifier, JwksCache, TokenVerificationError, type TokenExpectations, type VerifiedToken, type TokenVerifierOptions, type JwksCacheOptions } from './tokens/index.js';
export { readSecret, type SecretSource } from './config/index.js';
