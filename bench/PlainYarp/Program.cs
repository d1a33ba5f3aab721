// The gateway a user would pick instead of Baton, as a benchmark's reference: a plain YARP app (only the
// Yarp.ReverseProxy package) routing every request to the cluster "demo" with YARP's own HashCookie
// affinity, so a client sticks to one backend and its session lives and dies with that backend. The
// destinations come from the command line:
//   dotnet bench/PlainYarp/bin/Release/net10.0/Baton.Bench.PlainYarp.dll --urls http://127.0.0.1:6580 \
//     --ReverseProxy:Clusters:demo:Destinations:b1:Address=http://127.0.0.1:6581 ...
// GET /_plain/ready answers 200 once it listens. Its settings are its own appsettings.json, next to the binary,
// whatever folder it is started from.
var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));

var app = builder.Build();
app.MapGet("/_plain/ready", () => "ready");
app.MapReverseProxy();
app.Run();
