using System.Net.Http.Json;
using System.Text.Json;

namespace Baton.Tests.Infrastructure;

/// <summary>Calls the DemoBackend contract and reads its answers.</summary>
internal static class DemoClient
{
    public static async Task<CounterAnswer> IncrementAsync(this HttpClient client)
    {
        using var response = await client.PostAsync(new Uri("/counter", UriKind.Relative), content: null);
        Assert.True(response.IsSuccessStatusCode, $"POST /counter answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<CounterAnswer>(JsonSerializerOptions.Web))!;
    }

    public static async Task<CounterAnswer> ReadCounterAsync(this HttpClient client)
    {
        using var response = await client.GetAsync(new Uri("/counter", UriKind.Relative));
        Assert.True(response.IsSuccessStatusCode, $"GET /counter answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<CounterAnswer>(JsonSerializerOptions.Web))!;
    }

    public static async Task<BlobAnswer> BlobAsync(this HttpClient client, HttpMethod method, int? bytes = null)
    {
        using var response = await client.SendAsync(new HttpRequestMessage(method, bytes is null ? "/blob" : $"/blob?bytes={bytes}"));
        Assert.True(response.IsSuccessStatusCode, $"{method} /blob answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync<BlobAnswer>(JsonSerializerOptions.Web))!;
    }
}
