using System.Collections.Concurrent;
using Baton.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace Baton.Tests.Operations;

/// <summary>With OTEL_EXPORTER_OTLP_ENDPOINT set, the gateway exports its traces over OTLP to that endpoint.</summary>
[Trait("Category", "Functional")]
public sealed class OtlpExportTests
{
    [Fact]
    public async Task WithAnOtlpEndpoint_TracesAreExported()
    {
        var received = new ConcurrentQueue<(string Path, string? ContentType, long Bytes)>();
        var collectorBuilder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = ["--urls=http://127.0.0.1:0"], ContentRootPath = TestPaths.NewFolder("otlp") });
        await using var collector = collectorBuilder.Build();
        collector.MapPost("/v1/{signal}", async (HttpContext context, string signal) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue(("/v1/" + signal, context.Request.ContentType, body.Length));
            return Results.Ok();
        });
        await collector.StartAsync();
        var endpoint = TestBackend.ServerAddress(collector);

        await using var backend = await TestBackend.StartAsync("b1");
        await using var gateway = await TestGateway.StartAsync(
            [backend],
            [$"--OTEL_EXPORTER_OTLP_ENDPOINT={endpoint}", "--OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", "--OTEL_BSP_SCHEDULE_DELAY=200"]);
        using var client = gateway.NewClient();
        await client.IncrementAsync();

        await Eventually.TrueAsync(
            () => received.Any(r => r.Path == "/v1/traces" && r.ContentType == "application/x-protobuf" && r.Bytes > 0),
            TimeSpan.FromSeconds(20),
            "the request's spans should reach the OTLP endpoint");
    }
}
