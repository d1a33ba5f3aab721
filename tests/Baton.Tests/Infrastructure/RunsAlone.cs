namespace Baton.Tests.Infrastructure;

/// <summary>
/// Tests that run with no other test alongside: whole load-test runs (they need the machine's cores) and
/// tests of process-wide listeners that other in-process gateways would disturb.
/// </summary>
[CollectionDefinition(nameof(RunsAlone), DisableParallelization = true)]
public sealed class RunsAlone;
