/**
 * The service side: broker client, enrollment, the enroll / renew / watch loop (AgentCore), the
 * file-writing `credbroker agent` (Agent) and the embeddable client library (ServiceCredentials).
 */
export * from './broker-api.js';
export * from './broker-client.js';
export * from './enroll.js';
export * from './renewal-plan.js';
export * from './service-identity.js';
export * from './broker-transport.js';
export * from './join-token-source.js';
export * from './agent-core.js';
export * from './agent-config.js';
export * from './identity-files.js';
export * from './reload-hook.js';
export * from './agent.js';
export * from './token-cache.js';
export * from './identity-certificate-provider.js';
export * from './service-credentials.js';
