using System.Net;
using Baton.Protocol;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Checkpoints;

/// <summary>Clients can neither read nor write session state through protocol headers.</summary>
[Trait("Category", "Functional")]
public sealed class ProtocolHeaderTests : IAsyncLifetime
{
    private static readonly string[] Spellings =
    [
        "Baton-Session", "baton-session", "BATON-SESSION", "Baton_Session", "baton_session",
        "Baton-Checkpoint", "baton_checkpoint", "Baton-Restore", "Baton-Incarnation", "Baton-Stale", "bAtOn-Anything",
    ];

    private readonly LibraryCluster _cluster = new();

    public Task InitializeAsync() => _cluster.InitializeAsync();

    public Task DisposeAsync() => _cluster.DisposeAsync();

    [Fact]
    public async Task ClientSendingProtocolHeadersInEverySpelling_ChangesNoSession_AndGetsNo5xx()
    {
        using var victim = _cluster.Gateway.NewClient();
        await victim.PostAsync(new Uri("/inc", UriKind.Relative), null);
        var victimId = SessionCookies.SessionIdOf(victim, _cluster.Gateway);

        // A correctly signed grant for the victim's session: valid protocol, but from a client.
        var keys = new ProtocolKeys(TestGateway.Secret);
        var forgedGrant = new SessionGrant(victimId, 0, 0, 60_000, 1_000_000, ProtocolTime.Now(TimeProvider.System)).Format(keys);
        using var attacker = _cluster.Gateway.NewClient();
        foreach (var name in Spellings)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/inc");
            request.Headers.TryAddWithoutValidation(name, forgedGrant);
            using var response = await attacker.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{name}: {(int)response.StatusCode}");
        }

        Assert.Equal("1/-", await victim.GetStringAsync(new Uri("/read", UriKind.Relative)));
        Assert.Equal($"{Spellings.Length}/-", await attacker.GetStringAsync(new Uri("/read", UriKind.Relative)));
    }

    [Theory]
    [InlineData("POST", "/inc", 200)]
    [InlineData("GET", "/read", 200)]
    [InlineData("POST", "/fail", 500)]
    [InlineData("POST", "/teapot", 418)]
    [InlineData("GET", "/no-such-path", 404)]
    [InlineData("POST", "/empty", 204)]
    [InlineData("POST", "/late", 200)]
    public async Task NoProtocolHeaderReachesAClient_WhateverTheStatus(string method, string path, int status)
    {
        using var client = _cluster.Gateway.NewClient();
        await client.PostAsync(new Uri("/inc", UriKind.Relative), null);

        using var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        Assert.Equal(status, (int)response.StatusCode);
        var names = response.Headers.Select(h => h.Key).Concat(response.Content.Headers.Select(h => h.Key)).Concat(response.TrailingHeaders.Select(h => h.Key));
        Assert.DoesNotContain(names, ProtocolConstants.IsProtocolHeader);
    }

    [Fact]
    public async Task ACheckpointOnA500_IsStored_AndItsStateNeverReachesTheClient()
    {
        using var client = _cluster.Gateway.NewClient();

        using var failed = await client.PostAsync(new Uri("/fail", UriKind.Relative), null);
        var body = await failed.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        Assert.StartsWith("{", body, StringComparison.Ordinal);
        Assert.Equal(1, StoredSessions.FromJournal(_cluster.Gateway.JournalPath, SessionCookies.SessionIdOf(client, _cluster.Gateway))!.Int32("n"));
        Assert.Equal("1/-", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
    }

    [Fact]
    public async Task AChangeMadeAfterTheResponseStarted_RidesWithTheSessionsNextResponse()
    {
        using var client = _cluster.Gateway.NewClient();

        using var streamed = await client.PostAsync(new Uri("/late", UriKind.Relative), null);
        Assert.Equal("streaming", await streamed.Content.ReadAsStringAsync());
        var id = SessionCookies.SessionIdOf(client, _cluster.Gateway);
        Assert.Null(StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)?.Values.GetValueOrDefault("late"));

        Assert.Equal("0/yes", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
        var afterRead = StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!;
        Assert.Equal(1, afterRead.Version);
        Assert.Equal("yes"u8.ToArray(), afterRead.Values["late"]);

        // A response without a body cannot lead with state either: its change rides with the next one.
        using var noBody = await client.PostAsync(new Uri("/empty", UriKind.Relative), null);
        Assert.Equal(HttpStatusCode.NoContent, noBody.StatusCode);
        Assert.Equal(1, StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!.Version);
        Assert.Equal("1/yes", await client.GetStringAsync(new Uri("/read", UriKind.Relative)));
        var afterSecondRead = StoredSessions.FromJournal(_cluster.Gateway.JournalPath, id)!;
        Assert.Equal(2, afterSecondRead.Version);
        Assert.Equal(1, afterSecondRead.Int32("n"));
    }
}
