//! The integration-test harness: starts real services (an S3-compatible
//! server, moto for AWS Secrets Manager, protocol-faithful HTTP fakes for the
//! platforms that cannot run here) as local processes on 127.0.0.1 with random
//! ports, and tears them down when a test ends.
//!
//! Empty until the first integration test needs a service.
