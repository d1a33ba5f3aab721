using System.Net;
using System.Net.Http.Json;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Operations;

/// <summary>Logs at every level, through sessions, bad cookies, forged headers and a failover, never carry state, secrets, MACs or raw session ids.</summary>
[Trait("Category", "Functional")]
public sealed class LogHygieneTests
{
    private const string Payload = "PAYLOAD-a7c3e9f1-DO-NOT-LOG";

    [Fact]
    public async Task ARunWithADistinctivePayloadAndSecret_LeavesNeitherInAnyLogLine()
    {
        var logs = new LogCapture();
        var backends = new List<TestBackend>();
        for (var i = 1; i <= 3; i++)
        {
            backends.Add(await TestBackend.StartAsync($"b{i}", [], logs.AttachTo));
        }

        var gateway = await TestGateway.StartAsync(backends, [], logs.AttachTo);
        string cookie;
        string sessionId;
        try
        {
            using var client = gateway.NewClient();
            using (var added = await client.PostAsJsonAsync("/cart/items", new { sku = Payload, qty = 1 }))
            {
                Assert.Equal(HttpStatusCode.OK, added.StatusCode);
            }

            var owner = (await client.IncrementAsync()).Instance;
            cookie = CookieJar.Of(client).GetCookies(gateway.Address)[TestGateway.CookieName]!.Value;
            sessionId = SessionCookies.SessionIdOf(client, gateway);

            // A forged cookie, protocol headers from the client, and a failover with a restore of the payload.
            using var raw = gateway.NewRawClient();
            using var forged = new HttpRequestMessage(HttpMethod.Get, "/cart");
            forged.Headers.Add("Cookie", $"{TestGateway.CookieName}={sessionId}.AAAAAAAAAAAAAAAAAAAAAA");
            forged.Headers.Add("Baton-Checkpoint", "sid=x;ver=1");
            using (await raw.SendAsync(forged))
            {
            }

            await backends.Single(b => b.InstanceId == owner).DisposeAsync();
            backends.RemoveAll(b => b.InstanceId == owner);
            using var moved = await client.GetAsync(new Uri("/cart", UriKind.Relative));
            Assert.Contains(Payload, await moved.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        finally
        {
            await gateway.DisposeAsync();
            foreach (var backend in backends)
            {
                await backend.DisposeAsync();
            }
        }

        // The failed attempt is logged by the gateway with the error's own message, and without a stack trace.
        var failing = logs.Lines.Where(line => line.Contains("[4001]", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(failing);
        Assert.All(failing, line =>
        {
            Assert.Matches(@"failed \(\w+: .+\); the session moves", line);
            Assert.DoesNotContain(" at ", line, StringComparison.Ordinal);
        });

        // The session does appear, hashed, in the failover's lines.
        var hash = Baton.Protocol.Ids.LogHash(sessionId);
        Assert.Contains(logs.Lines, line => line.Contains("[4002]", StringComparison.Ordinal) && line.Contains(hash, StringComparison.Ordinal));
        foreach (var secret in new[] { Payload, TestGateway.Secret, cookie, sessionId })
        {
            Assert.DoesNotContain(logs.Lines, line => line.Contains(secret, StringComparison.Ordinal));
        }
    }
}
