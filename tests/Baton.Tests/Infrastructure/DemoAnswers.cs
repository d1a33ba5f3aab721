namespace Baton.Tests.Infrastructure;

/// <summary>What POST|GET /counter answers.</summary>
internal sealed record CounterAnswer(int Count, string Instance);

/// <summary>What POST|GET /blob answers.</summary>
internal sealed record BlobAnswer(string Sha256, int Bytes, string Instance);
