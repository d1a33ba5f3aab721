using System.Net;
using Baton.Tests.Infrastructure;

namespace Baton.Tests.Functional;

/// <summary>
/// The budgets on stored state: all sessions' state together (<c>Baton:Sessions:MaxTotalStateBytes</c>) and the
/// journal on disk (<c>Baton:Journal:MaxSizeBytes</c>). Growth past them is refused and kept nowhere; every
/// change that does not grow a session goes on.
/// </summary>
[Trait("Category", "Functional")]
public sealed class StateBudgetTests : IAsyncLifetime
{
    private const int Blob = 300_000;
    private readonly List<TestBackend> _backends = [];

    public async Task InitializeAsync()
    {
        for (var i = 1; i <= 3; i++)
        {
            _backends.Add(await TestBackend.StartAsync($"b{i}"));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var backend in _backends)
        {
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task GrowthPastTheTotalStateBudget_Gets503AndIsKeptNowhere_WhileShrinkingGoesOn_AndFreesRoom()
    {
        await using var gateway = await TestGateway.StartAsync(_backends, ["--Baton:Sessions:MaxTotalStateBytes=1048576"]);
        using var refusals = new InstrumentCounter(gateway, "baton.session.refused", "baton.reason", "state_budget");
        var holders = Enumerable.Range(0, 3).Select(_ => gateway.NewClient()).ToList();
        foreach (var holder in holders)
        {
            await holder.BlobAsync(HttpMethod.Post, Blob);
        }

        using var late = gateway.NewClient();
        Assert.Equal(1, (await late.IncrementAsync()).Count);

        using var refused = await late.PostAsync(new Uri($"/blob?bytes={Blob}", UriKind.Relative), content: null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Contains("Baton:Sessions:MaxTotalStateBytes", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(1, refusals.Total);

        // Kept nowhere: neither the store nor the backend's memory has the blob; the counter is as it was.
        Assert.Equal(0, (await late.BlobAsync(HttpMethod.Get)).Bytes);
        Assert.Equal(2, (await late.IncrementAsync()).Count);

        // A session that shrinks is never refused, and the room it frees is there for others.
        Assert.Equal(10, (await holders[0].BlobAsync(HttpMethod.Post, 10)).Bytes);
        Assert.Equal(Blob, (await late.BlobAsync(HttpMethod.Post, Blob)).Bytes);
        Assert.Equal(Blob, (await holders[1].BlobAsync(HttpMethod.Get)).Bytes);
    }

    [Fact]
    public async Task AJournalPastItsSizeLimit_RefusesGrowth_NamingTheSetting_ButNotAChangeThatDoesNotGrow_UntilSessionsGo()
    {
        await using var gateway = await TestGateway.StartAsync(_backends, ["--Baton:Journal:MaxSizeBytes=1048576"]);
        using var first = gateway.NewClient();
        await first.BlobAsync(HttpMethod.Post, 200_000);

        // Each new session's blob grows the journal until the gateway sees it past the limit.
        var holders = new List<HttpClient>();
        string? reason = null;
        await Eventually.TrueAsync(async () =>
        {
            var client = gateway.NewClient();
            holders.Add(client);
            using var answer = await client.PostAsync(new Uri("/blob?bytes=200000", UriKind.Relative), content: null);
            if (answer.StatusCode == HttpStatusCode.OK)
            {
                return false;
            }

            Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
            Assert.NotNull(answer.Headers.RetryAfter);
            reason = await answer.Content.ReadAsStringAsync();
            return true;
        }, TimeSpan.FromSeconds(30), "growth should be refused once the journal is past Baton:Journal:MaxSizeBytes");

        Assert.Contains("Baton:Journal:MaxSizeBytes", reason, StringComparison.Ordinal);
        Assert.Equal(200_000, (await first.BlobAsync(HttpMethod.Post, 200_000)).Bytes);
        Assert.Equal(5, (await first.BlobAsync(HttpMethod.Post, 5)).Bytes);

        // Once the sessions end, the full journal is compacted and takes growth again.
        foreach (var holder in holders)
        {
            using var ended = await holder.PostAsync(new Uri("/logout", UriKind.Relative), content: null);
            holder.Dispose();
        }

        await Eventually.TrueAsync(async () =>
        {
            using var answer = await first.PostAsync(new Uri("/blob?bytes=200000", UriKind.Relative), content: null);
            return answer.StatusCode == HttpStatusCode.OK;
        }, TimeSpan.FromSeconds(30), "growth should be taken again once the journal holds less than its limit");
    }

    [Fact]
    public async Task ABackendAtItsOwnStateLimit_RollsTheChangeBackWith503_AndTakesGrowthOnceRoomIsFreed()
    {
        await using var backend = await TestBackend.StartAsync("solo", "--Baton:Backend:MaxTotalStateBytes=1048576");
        await using var gateway = await TestGateway.StartAsync([backend]);
        using var first = gateway.NewClient();
        using var second = gateway.NewClient();
        using var third = gateway.NewClient();
        await first.BlobAsync(HttpMethod.Post, 400_000);
        await second.BlobAsync(HttpMethod.Post, 400_000);
        Assert.Equal(1, (await third.IncrementAsync()).Count);

        using var refused = await third.PostAsync(new Uri("/blob?bytes=400000", UriKind.Relative), content: null);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        Assert.NotNull(refused.Headers.RetryAfter);
        Assert.Contains("Baton:Backend:MaxTotalStateBytes", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(0, (await third.BlobAsync(HttpMethod.Get)).Bytes);

        await first.BlobAsync(HttpMethod.Post, 10);
        Assert.Equal(400_000, (await third.BlobAsync(HttpMethod.Post, 400_000)).Bytes);
        Assert.Equal(2, (await third.IncrementAsync()).Count);
    }
}
