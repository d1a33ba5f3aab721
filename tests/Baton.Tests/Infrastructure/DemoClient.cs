using System.Net.Http.Json;
using System.Text.Json;

namespace Baton.Tests.Infrastructure;

internal sealed record CounterAnswer(int Count, string Instance);

/// <summary>Calls the DemoBackend contract and reads its answers.</summary>
internal static class DemoClient
{
    public static async Task<CounterAnswer> IncrementAsync(this HttpClient client)
    {
        using var response = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
        Assert.True(response.IsSuccessStatusCode, $"POST /counter answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<CounterAnswer>(JsonSerializerOptions.Web))!;
    }
}
